// A theme: named colours in btop's format. Loading and parsing are in ThemeParser.swift, discovery in ThemeStore.swift,
// and Palette.swift turns a theme into the styles widgets use.

/// Colours by key (`main_bg`, `lr_line`, ...). Every known key always has a value: keys a theme file leaves out
/// keep the built-in default.
public struct Theme: Equatable, Sendable {
    public var name: String
    public private(set) var colors: [String: Color]

    public init(name: String, colors: [String: Color] = [:], base: Theme? = nil) {
        self.name = name
        var all = (base ?? Theme.builtinDefault).colors
        for (k, v) in colors { all[k] = v }
        self.colors = all
    }

    private init(name: String, exact: [String: Color]) {
        self.name = name; self.colors = exact
    }

    public subscript(key: String) -> Color {
        get { colors[key] ?? .default }
        set { colors[key] = newValue }
    }

    /// The gradient `<base>_start`, `<base>_mid`, `<base>_end`.
    public func gradient(_ base: String) -> Gradient {
        Gradient(start: self[base + "_start"], mid: self[base + "_mid"], end: self[base + "_end"])
    }

    /// Every key lrtop reads, in the order of `themes/default.theme`, with what it colours.
    public static let keys: [(key: String, help: String)] = [
        ("main_bg", "background of the whole screen (empty: the terminal's own)"),
        ("main_fg", "normal text"),
        ("title", "box titles and the header"),
        ("hi_fg", "highlighted text: key names, current values"),
        ("inactive_fg", "secondary text, hints, ghost branches after a rollback"),
        ("div_line", "box borders and axis lines"),
        ("graph_text", "axis labels"),
        ("lr_line", "the learning rate of group 1"),
        ("lr_group_2", "the learning rate of group 2"),
        ("lr_group_3", "the learning rate of group 3"),
        ("lr_group_4", "the learning rate of group 4"),
        ("lr_group_5", "the learning rate of group 5"),
        ("lr_group_6", "the learning rate of group 6"),
        ("planned_line", "the planned schedule ahead of the current step"),
        ("loss_line", "raw training loss"),
        ("smooth_line", "smoothed training loss"),
        ("val_point", "validation loss points"),
        ("acc_point", "validation accuracy"),
        ("marker", "interventions on the charts"),
        ("run_2", "second overlaid run"),
        ("run_3", "third overlaid run"),
        ("run_4", "fourth overlaid run"),
        ("throughput_start", "throughput sparkline, low end"),
        ("throughput_mid", "throughput sparkline, middle"),
        ("throughput_end", "throughput sparkline, high end"),
        ("meter_bg", "the empty part of the progress bar"),
        ("error_fg", "errors, rejected commands, divergence"),
        ("ok_fg", "running, checkpoints"),
        ("warn_fg", "paused, guard trips, held LR"),
        ("selected_bg", "selected menu item background"),
        ("selected_fg", "selected menu item text"),
    ]

    public static let knownKeys: Set<String> = Set(keys.map(\.key))

    /// Keys that are the first of a `_start`/`_mid`/`_end` triplet, without the suffix.
    public static let gradientBases: [String] = ["throughput"]

    static func hex(_ s: String) -> Color { RGB(hex: s).map(Color.rgb) ?? .default }

    /// The built-in dark theme (also what `themes/default.theme` holds; ThemeTests hold them equal).
    public static let builtinDefault: Theme = Theme(name: "default", exact: [
        "main_bg": hex("#0d1117"), "main_fg": hex("#c9d1d9"), "title": hex("#e6edf3"), "hi_fg": hex("#58a6ff"),
        "inactive_fg": hex("#6e7681"), "div_line": hex("#30363d"), "graph_text": hex("#8b949e"),
        "lr_line": hex("#58a6ff"), "lr_group_2": hex("#d2a8ff"), "lr_group_3": hex("#ffa657"),
        "lr_group_4": hex("#7ee787"), "lr_group_5": hex("#ff7b72"), "lr_group_6": hex("#79c0ff"),
        "planned_line": hex("#3d5a80"), "loss_line": hex("#9e7a3c"), "smooth_line": hex("#ffb84d"),
        "val_point": hex("#f778ba"), "acc_point": hex("#7ee787"), "marker": hex("#ff7b72"),
        "run_2": hex("#f0883e"), "run_3": hex("#a371f7"), "run_4": hex("#3fb950"),
        "throughput_start": hex("#1f6feb"), "throughput_mid": hex("#58a6ff"), "throughput_end": hex("#a5d6ff"),
        "meter_bg": hex("#21262d"), "error_fg": hex("#f85149"), "ok_fg": hex("#3fb950"), "warn_fg": hex("#d29922"),
        "selected_bg": hex("#1f6feb"), "selected_fg": hex("#ffffff"),
    ])

    /// The plain 8-colour fallback (ANSI palette indices, terminal background): works on any colour terminal.
    public static let basic: Theme = Theme(name: "basic", exact: [
        "main_bg": .default, "main_fg": .default, "title": .white, "hi_fg": .cyan, "inactive_fg": .default,
        "div_line": .blue, "graph_text": .default,
        "lr_line": .cyan, "lr_group_2": .magenta, "lr_group_3": .yellow, "lr_group_4": .green, "lr_group_5": .red,
        "lr_group_6": .blue, "planned_line": .blue, "loss_line": .yellow, "smooth_line": .white,
        "val_point": .magenta, "acc_point": .green, "marker": .red,
        "run_2": .yellow, "run_3": .magenta, "run_4": .green,
        "throughput_start": .green, "throughput_mid": .green, "throughput_end": .green,
        "meter_bg": .default, "error_fg": .red, "ok_fg": .green, "warn_fg": .yellow,
        "selected_bg": .cyan, "selected_fg": .black,
    ])

    /// The names of the themes built into the binary: `basic` and every `themes/*.theme` (BuiltinThemes.swift).
    public static let builtinNames: [String] = [basic.name] + builtinFiles.map(\.name)

    /// A built-in theme by name; nil when there is none of that name.
    public static func builtin(named name: String) -> ThemeLoadResult? {
        if name == basic.name { return ThemeLoadResult(theme: basic, diagnostics: []) }
        guard let file = builtinFiles.first(where: { $0.name == name }) else { return nil }
        return parse(file.text, name: name, base: base(forName: name))
    }

    /// What a theme file's missing keys fall back to: `mono` (and a user's `basic.theme`) build on the 8-colour
    /// `basic`, every other theme on the built-in default.
    static func base(forName name: String) -> Theme {
        name == basic.name || name == "mono" ? basic : builtinDefault
    }
}

/// Three colours to interpolate between (btop's `_start`/`_mid`/`_end`).
public struct Gradient: Equatable, Sendable {
    public var start: Color
    public var mid: Color
    public var end: Color

    public init(start: Color, mid: Color, end: Color) {
        self.start = start; self.mid = mid; self.end = end
    }

    /// The colour at t in [0, 1]; palette/default colours do not interpolate (nearest of the three is used).
    public func color(at t: Double) -> Color {
        let t = min(1, max(0, t.isFinite ? t : 0))
        guard case .rgb(let s) = start, case .rgb(let m) = mid, case .rgb(let e) = end else {
            return t < 1.0 / 3 ? start : t < 2.0 / 3 ? mid : end
        }
        return .rgb(t < 0.5 ? s.mixed(with: m, t * 2) : m.mixed(with: e, (t - 0.5) * 2))
    }
}
