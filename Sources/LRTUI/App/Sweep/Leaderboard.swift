/// What the sweep leaderboard shows, built by whoever runs the sweep (the UI knows rows, not trainers).
public struct LeaderboardModel: Sendable {
    /// The frame's title: `sweep · runs/sweep-2026-…`.
    public var title: String
    /// The right of the title: `rung 2/4 · 156 steps · 12/80 trials · 1m03s`.
    public var progress: String
    public var columns: [TrialColumn]
    public var rows: [TrialRow]
    /// The sweep ended (completed or stopped): q quits without asking.
    public var finished: Bool
    /// Lines under the table: the best configuration, its `lrtop train` line.
    public var footer: [String]
    /// A line about a row, shown while it is selected (its trials' logs, why one failed), by row id.
    public var details: [String: String]

    public init(title: String, progress: String, columns: [TrialColumn], rows: [TrialRow], finished: Bool,
                footer: [String] = [], details: [String: String] = [:]) {
        self.title = title; self.progress = progress; self.columns = columns; self.rows = rows
        self.finished = finished; self.footer = footer; self.details = details
    }
}

/// The sweep behind the leaderboard.
public protocol LeaderboardSource: AnyObject {
    func model() -> LeaderboardModel
    /// Stops the sweep: running trials end, their logs kept.
    func stop()
}

/// The live leaderboard of `lrtop sweep`: configurations as rows (TrialTable), sortable, one selected. A screen
/// of `TUIApp`'s loop, as the dashboard is.
public final class Leaderboard: Screen {
    public let source: any LeaderboardSource
    public var table = TrialTableState()
    public private(set) var model: LeaderboardModel
    public let theme: Theme
    public var palette: Palette
    /// A quit asked for while the sweep runs: a second q stops it.
    var confirmingQuit = false
    var notice: String?
    var stopped = false

    public init(source: any LeaderboardSource, theme: Theme = .builtinDefault, depth: ColorDepth = .truecolor) {
        self.source = source
        self.theme = theme
        self.palette = Palette(theme: theme, depth: depth)
        self.model = source.model()
    }

    /// Takes the source's latest rows; true when anything changed.
    @discardableResult
    public func update() -> Bool {
        let m = source.model()
        let changed = m.rows != model.rows || m.progress != model.progress || m.footer != model.footer
            || m.finished != model.finished || m.details != model.details
        model = m
        return changed
    }

    public func begin(depth: ColorDepth, options: TUIOptions) { palette = Palette(theme: theme, depth: depth) }

    public var hasFinished: Bool { model.finished }

    public func handle(_ key: Key) -> ScreenAction {
        let wasConfirming = confirmingQuit
        confirmingQuit = false
        notice = nil
        switch key {
        case .char("q"), .ctrl("c"):
            if model.finished || stopped { return .quit }
            if wasConfirming {
                source.stop()
                stopped = true
                notice = "stopping the sweep: running trials end at their next step, their logs stay"
                return .none
            }
            confirmingQuit = true
            notice = "the sweep is running: q again stops it (finished trials' logs stay), any other key goes on"
        case .ctrl("l"): return .redraw
        case .char("s"), .tab: table.cycleSortColumn(columns: model.columns)
        case .char("S"), .backTab:
            let next = ((table.sortColumn ?? model.columns.count) + model.columns.count - 1) % (model.columns.count + 1)
            table.sort(by: next < model.columns.count ? next : nil, columns: model.columns)
        case .char("r"): table.reverseSort()
        case .up, .char("k"): table.moveSelection(by: -1, rows: model.rows, columns: model.columns)
        case .down, .char("j"): table.moveSelection(by: 1, rows: model.rows, columns: model.columns)
        case .pageUp: table.moveSelection(by: -10, rows: model.rows, columns: model.columns)
        case .pageDown: table.moveSelection(by: 10, rows: model.rows, columns: model.columns)
        case .home: table.moveSelection(by: -model.rows.count, rows: model.rows, columns: model.columns)
        case .end: table.moveSelection(by: model.rows.count, rows: model.rows, columns: model.columns)
        default: break
        }
        return .none
    }

    public static let minimumSize = (width: 60, height: 10)

    public func render(into buffer: inout Buffer) {
        let area = buffer.area
        buffer.fill(area, style: palette.background)
        guard area.width >= Self.minimumSize.width, area.height >= Self.minimumSize.height else {
            TooSmallMessage(required: Self.minimumSize, actual: (area.width, area.height)).render(into: &buffer, area: area)
            return
        }
        let detail = table.selectedID.flatMap { model.details[$0] }.map { [$0] } ?? []
        let footerLines = (model.footer + detail).flatMap { Format.wrap($0, width: area.width - 2) }
        let footerHeight = min(footerLines.count, max(0, area.height - 8))
        let tableArea = Rect(x: area.x, y: area.y, width: area.width, height: area.height - 1 - footerHeight)
        let block = Block(title: model.title, rightTitle: model.progress, titleStyle: palette.title,
                          rightTitleStyle: palette.highlight, borderStyle: palette.border)
        block.render(TrialTable(columns: model.columns, rows: model.rows, state: table, palette: palette),
                     into: &buffer, area: tableArea)
        for (i, line) in footerLines.prefix(footerHeight).enumerated() {
            buffer.set(string: line, at: Position(x: area.x + 1, y: tableArea.bottom + i),
                       style: i == 0 && !model.footer.isEmpty ? palette.ok.bold : palette.text, clip: area)
        }
        let bar = area.row(area.height - 1)
        if let notice {
            buffer.set(string: notice.truncated(toWidth: bar.width), at: Position(x: bar.x, y: bar.y),
                       style: palette.warn.bold, clip: bar)
        } else {
            let keys = "↑↓ select  s sort column  r reverse  q " + (model.finished || stopped ? "quit" : "stop & quit")
            buffer.set(string: keys.truncated(toWidth: bar.width), at: Position(x: bar.x, y: bar.y),
                       style: palette.inactive, clip: bar)
        }
    }
}
