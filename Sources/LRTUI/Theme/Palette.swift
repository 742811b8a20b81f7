/// The styles widgets draw with, resolved from a theme for a colour depth. At depth `.none` colours are dropped and
/// roles are told apart by flags instead (titles bold, hints dim, selection reversed, errors bold+underline).
public struct Palette: Equatable, Sendable {
    public var background: Style
    public var text: Style
    public var title: Style
    public var highlight: Style
    public var inactive: Style
    public var border: Style
    public var axis: Style
    public var error: Style
    public var ok: Style
    public var warn: Style
    public var selected: Style
    public var planned: Style
    public var loss: Style
    public var smooth: Style
    public var valPoint: Style
    public var accPoint: Style
    public var marker: Style
    public var meterEmpty: Style
    /// An editable text field.
    public var field: Style
    /// One style per param group (cycled).
    public var groups: [Style]
    /// One style per overlaid run; index 0 is the primary run (its lines use `groups`/`loss`).
    public var runs: [Style]
    public var throughput: Gradient
    public var monochrome: Bool

    public init(theme: Theme, depth: ColorDepth = .truecolor) {
        let mono = depth == .none
        monochrome = mono
        func s(_ key: String, _ flags: CellFlags = []) -> Style {
            mono ? Style(flags: flags) : Style(fg: theme[key], flags: flags)
        }
        background = mono ? Style(fg: .default, bg: .default) : Style(fg: theme["main_fg"], bg: theme["main_bg"])
        text = s("main_fg")
        title = s("title", .bold)
        highlight = s("hi_fg", mono ? .bold : [])
        inactive = s("inactive_fg", mono ? .dim : [])
        border = s("div_line", mono ? .dim : [])
        axis = s("graph_text", mono ? .dim : [])
        error = s("error_fg", mono ? [.bold, .underline] : .bold)
        ok = s("ok_fg")
        warn = s("warn_fg", mono ? .bold : [])
        selected = mono ? Style(flags: .reverse) : Style(fg: theme["selected_fg"], bg: theme["selected_bg"], flags: .bold)
        planned = s("planned_line", .dim)
        loss = s("loss_line", mono ? .dim : [])
        smooth = s("smooth_line", mono ? .bold : [])
        valPoint = s("val_point", .bold)
        accPoint = s("acc_point")
        marker = s("marker", .bold)
        meterEmpty = s("meter_bg", mono ? .dim : [])
        field = mono ? Style(flags: .underline) : Style(fg: theme["hi_fg"], bg: theme["meter_bg"])
        groups = ["lr_line", "lr_group_2", "lr_group_3", "lr_group_4", "lr_group_5", "lr_group_6"].enumerated().map {
            i, k in s(k, mono && i % 2 == 1 ? .dim : [])
        }
        runs = [s("main_fg"), s("run_2"), s("run_3"), s("run_4")]
        throughput = mono ? Gradient(start: .default, mid: .default, end: .default) : theme.gradient("throughput")
    }

    public func group(_ i: Int) -> Style { groups[((i % groups.count) + groups.count) % groups.count] }
    public func run(_ i: Int) -> Style { runs[((i % runs.count) + runs.count) % runs.count] }
}
