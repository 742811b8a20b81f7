// The one table of keys and what they do. The dashboard acts on it, the help overlay and the key bar are generated
// from it. Keys that change the run produce a command of the steering language as a value, so the run logs every
// action.

/// What a key does in the dashboard.
public enum KeyAction: Hashable, Sendable {
    /// `pause` or `resume`, by the run's state.
    case togglePause
    /// `step`: one optimizer step while paused.
    case step
    /// `lr *F`: the LR times this factor (`/2` is 0.5), for the selected group when one is selected.
    case scaleLR(Double)
    /// `lr release`: give the LR back to the scheduler.
    case releaseLR
    /// `lr reset`: back to the base LR.
    case resetLR
    /// Opens the `:` command prompt.
    case prompt
    /// Opens the scheduler menu (→ `sched SPEC`).
    case schedulerMenu
    /// Opens the prompt with `warmup 200` to edit and send.
    case warmup
    /// `ckpt`.
    case checkpoint
    /// `rollback`.
    case rollback
    /// Opens the prompt with a `fork` around the current LR (or `adopt K` while a fork waits) to edit and send.
    case fork
    /// Sorts the branches table by its next column.
    case sortBranches
    /// Cycles the param group the LR keys act on (all → each group → all).
    case cycleGroup
    /// LR chart: log ↔ linear.
    case toggleLRScale
    /// Loss chart: linear ↔ log.
    case toggleLossScale
    /// Cycles the step range shown (run so far, whole planned run, last N steps).
    case cycleZoom
    /// Cycles the loss smoothing weight.
    case cycleSmoothing
    /// Switches to the next theme.
    case nextTheme
    /// Shows the help overlay.
    case help
    /// Quits (asks first while training is still running).
    case quit
    /// A run trained here: the screen closes, the run goes on headless (reattach with `lrtop attach`).
    case detach
    /// Closes an overlay.
    case close
    /// Redraws the whole screen (after something else wrote over it).
    case redraw
    /// Replay: moves the cursor by steps (`+500`, `-1000`) or by a share of the run (`+1%`, `-10%`).
    case seek(ReplayCommand.Seek)
    /// Replay: to the previous (-1) or next (+1) event.
    case seekEvent(Int)
    /// Replay: the next slower (-1) or faster (+1) playback speed.
    case changeSpeed(Int)
    /// Live: `pace *F`, the run's pace times this factor (`pace /2` slows it; from full speed, half of it).
    case changePace(Double)
    /// Replay: to the start of the run.
    case jumpToStart
    /// Replay: to the end of the run (the whole run drawn).
    case jumpToEnd
    /// Moves the focus: LR chart → loss chart → events → none.
    case cycleFocus
    /// Live: the LR range test (`find-lr`) and its panel; a replay: the run's find-lr curve up to the cursor.
    case findLR
    /// Opens or closes the metrics grid (every metric of the runs, one small chart each).
    case metricsView
    /// In the metrics grid: its name filter to type.
    case filterMetrics
    /// A key of the metrics grid itself (`KeyMap.metricsGrid`).
    case metricsGrid(MetricsGridAction)
}

/// What a key does in the metrics grid, before the key table.
public enum MetricsGridAction: Hashable, Sendable {
    /// Moves the selected chart by columns and rows.
    case select(columns: Int, rows: Int)
    /// Shows or hides the chart cursor (every chart's value at one step); ← → then move it.
    case toggleCursor
    /// The selected chart's y axis: linear ↔ log.
    case toggleScale
    /// Pins the selected metric to the main view's loss panel (or unpins it).
    case pin
    /// Hides the cursor, else clears the filter, else back to the main view.
    case back
}

/// What the dashboard is showing, which decides the keys that apply: a run training in this process, a replay of
/// a log (with a cursor), or a log another process is writing (`lrtop watch`).
public enum KeyMode: Hashable, Sendable, CaseIterable {
    case live, replay, watch
}

/// One row of the key table.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var action: KeyAction
    /// What the help overlay says it does.
    public var help: String
    /// The short name on the key bar, or nil to leave it off the bar.
    public var barLabel: String?
    /// Where the binding applies (every mode unless said otherwise).
    public var modes: Set<KeyMode>
    /// Keys of this row that do the opposite (`-` beside `+`): one help row for a pair of keys.
    public var alternates: [Key: KeyAction]

    public init(_ keys: [Key], _ action: KeyAction, _ help: String, bar: String? = nil,
                modes: Set<KeyMode> = Set(KeyMode.allCases), alternates: [Key: KeyAction] = [:]) {
        self.keys = keys; self.action = action; self.help = help; self.barLabel = bar; self.modes = modes
        self.alternates = alternates
    }

    /// What `key` (one of `keys`) does.
    public func action(for key: Key) -> KeyAction { alternates[key] ?? action }

    /// How the keys are written in help: "space", "+", "esc".
    public var keyLabel: String { keys.map(\.description).joined(separator: " ") }
}

public enum KeyMap {
    static let live: Set<KeyMode> = [.live]
    static let replay: Set<KeyMode> = [.replay]

    /// Every key of every mode, in help order. A key appears at most once per mode.
    public static let table: [KeyBinding] = [
        KeyBinding([.space], .togglePause, "pause / resume training", bar: "pause", modes: live),
        KeyBinding([.char("n")], .step, "one step (while paused)", bar: "step", modes: live),
        KeyBinding([.char("+"), .char("-")], .scaleLR(1.1), "LR ×1.1 / ÷1.1 (fine up / down)", modes: live,
                   alternates: [.char("-"): .scaleLR(1 / 1.1)]),
        KeyBinding([.char("]")], .scaleLR(2), "LR ×2", bar: "lr×2", modes: live),
        KeyBinding([.char("[")], .scaleLR(0.5), "LR ÷2", bar: "lr÷2", modes: live),
        KeyBinding([.char("r")], .releaseLR, "release LR to scheduler", modes: live),
        KeyBinding([.char("R")], .resetLR, "reset LR to base", modes: live),
        KeyBinding([.char("g")], .cycleGroup, "cycle param group for LR keys", modes: live),
        KeyBinding([.char(":")], .prompt, "command prompt", bar: "cmd", modes: live),
        KeyBinding([.char("s")], .schedulerMenu, "switch scheduler", bar: "sched", modes: live),
        KeyBinding([.char("w")], .warmup, "warmup (prompt: warmup 200)", modes: live),
        KeyBinding([.char("c")], .checkpoint, "checkpoint now", bar: "ckpt", modes: live),
        KeyBinding([.char("u")], .rollback, "roll back to last checkpoint", bar: "undo", modes: live),
        KeyBinding([.char("b")], .fork, "branch: prompt 'fork lr=…,…,… steps=N' (then 'adopt K' / 'drop')", modes: live),
        KeyBinding([.char("f")], .findLR, "find-lr: sweep the LR, pick on the curve (enter: lr, o: onecycle)", bar: "find-lr", modes: live),
        KeyBinding([.char("d")], .detach, "detach: the run goes on headless (lrtop attach NAME)",
                   bar: "detach", modes: live),
        KeyBinding([.char("<"), .char(">")], .changePace(0.5), "slower / faster: pace /2, *2 (:pace off)", modes: live,
                   alternates: [.char(">"): .changePace(2)]),
        // Replay: the cursor the charts, events and status are drawn up to.
        KeyBinding([.space], .togglePause, "play / pause (from the start at the end)", bar: "play", modes: replay),
        KeyBinding([.left], .seek(.percent(-1)), "back 1% of the run", bar: "seek", modes: replay),
        KeyBinding([.right], .seek(.percent(1)), "forward 1% of the run", modes: replay),
        KeyBinding([.pageUp], .seek(.percent(-10)), "back 10% of the run", modes: replay),
        KeyBinding([.pageDown], .seek(.percent(10)), "forward 10% of the run", modes: replay),
        KeyBinding([.char("n")], .step, "one step forward (pauses)", modes: replay),
        KeyBinding([.char(","), .char("p")], .seekEvent(-1), "previous event", modes: replay),
        KeyBinding([.char(".")], .seekEvent(1), "next event", bar: "event", modes: replay),
        KeyBinding([.char("<")], .changeSpeed(-1), "slower (x1000 … x1)", modes: replay),
        KeyBinding([.char(">")], .changeSpeed(1), "faster (x1 … x1000)", bar: "faster", modes: replay),
        KeyBinding([.home], .jumpToStart, "to the start", modes: replay),
        KeyBinding([.char("G"), .end], .jumpToEnd, "to the end (whole run)", bar: "end", modes: replay),
        KeyBinding([.char(":")], .prompt, "go to: STEP, seek ±N[%], speed xN", bar: "goto", modes: replay),
        KeyBinding([.char("B")], .sortBranches, "branches table: sort by the next column"),
        KeyBinding([.char("f")], .findLR, "the last find-lr curve up to the cursor (or enter on its event)", bar: "find-lr",
                   modes: [.replay, .watch]),
        KeyBinding([.char("l")], .toggleLRScale, "LR chart log / linear"),
        KeyBinding([.char("L")], .toggleLossScale, "loss chart linear / log"),
        KeyBinding([.char("z")], .cycleZoom, "zoom: run/full/last N"),
        KeyBinding([.char("e")], .cycleSmoothing, "loss smoothing 0/.6/.9/.99"),
        KeyBinding([.char("t")], .nextTheme, "next theme"),
        KeyBinding([.tab], .cycleFocus, "focus LR chart/loss chart/events (←→ cursor, ↑↓ enter open)", bar: "focus"),
        KeyBinding([.char("m")], .metricsView, "metrics grid: a chart per metric (/ filters)", bar: "metrics"),
        KeyBinding([.char("?"), .char("h"), .function(1)], .help, "this help (mouse: click focuses, wheel zooms)", bar: "help"),
        KeyBinding([.escape], .close, "close overlay / prompt / focus"),
        KeyBinding([.ctrl("l")], .redraw, "redraw the screen"),
        KeyBinding([.char("q"), .function(10)], .quit, "quit", bar: "quit"),
    ]

    /// The metrics grid's own keys, taken before the table's while it is open (the table's others still work:
    /// space, the LR keys, z, t, q ...).
    public static let metricsGrid: [KeyBinding] = [
        KeyBinding([.left], .metricsGrid(.select(columns: -1, rows: 0)), "grid: select the chart left (with the cursor: move it)"),
        KeyBinding([.right], .metricsGrid(.select(columns: 1, rows: 0)), "grid: select the chart right (with the cursor: move it)"),
        KeyBinding([.up], .metricsGrid(.select(columns: 0, rows: -1)), "grid: select the chart above"),
        KeyBinding([.down], .metricsGrid(.select(columns: 0, rows: 1)), "grid: select the chart below"),
        KeyBinding([.tab], .metricsGrid(.toggleCursor), "grid: chart cursor on/off: every metric's value at a step", bar: "cursor"),
        KeyBinding([.char("l")], .metricsGrid(.toggleScale), "grid: the selected chart's y axis log / linear", bar: "log-y"),
        KeyBinding([.enter], .metricsGrid(.pin), "grid: pin the selected metric to the loss panel (again: unpin)", bar: "pin"),
        KeyBinding([.char("/")], .filterMetrics, "grid: filter by name (words must all match; esc clears)", bar: "filter"),
        KeyBinding([.escape], .metricsGrid(.back), "grid: cursor off, else clear the filter, else back"),
        KeyBinding([.char("m")], .metricsView, "grid: back to the main view", bar: "back"),
    ]

    /// The keys of live training, in help order.
    public static let bindings: [KeyBinding] = bindings(for: .live)

    /// The keys of a mode, in help order.
    public static func bindings(for mode: KeyMode) -> [KeyBinding] {
        table.filter { $0.modes.contains(mode) }
    }

    /// The action of a key, or nil when the key does nothing.
    public static func action(for key: Key, mode: KeyMode = .live) -> KeyAction? {
        table.first(where: { $0.modes.contains(mode) && $0.keys.contains(key) })?.action(for: key)
    }

    /// The binding of an action.
    public static func binding(for action: KeyAction, mode: KeyMode = .live) -> KeyBinding? {
        table.first(where: { $0.modes.contains(mode) && ($0.action == action || $0.alternates.values.contains(action)) })
    }
}
