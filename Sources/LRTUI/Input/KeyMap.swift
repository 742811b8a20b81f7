// The one table of keys and what they do. The dashboard acts on it, the help overlay and the key bar are generated
// from it. Keys that change the run produce a command of the command language, so the trainer logs every action.

/// What a key does in the dashboard.
public enum KeyAction: Hashable, Sendable {
    /// `pause` or `resume`, by the run's state.
    case togglePause
    /// `step`: one optimizer step while paused.
    case step
    /// `lr <factor>` (e.g. `*1.1`, `/2`), for the selected group when one is selected.
    case scaleLR(String)
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
    /// Closes an overlay.
    case close
    /// Redraws the whole screen (after something else wrote over it).
    case redraw
}

/// One row of the key table.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    public var action: KeyAction
    /// What the help overlay says it does.
    public var help: String
    /// The short name on the key bar, or nil to leave it off the bar.
    public var barLabel: String?

    public init(_ keys: [Key], _ action: KeyAction, _ help: String, bar: String? = nil) {
        self.keys = keys; self.action = action; self.help = help; self.barLabel = bar
    }

    /// How the keys are written in help: "space", "+", "esc".
    public var keyLabel: String { keys.map(\.description).joined(separator: " ") }
}

public enum KeyMap {
    /// Every key of the dashboard, in help order.
    public static let bindings: [KeyBinding] = [
        KeyBinding([.space], .togglePause, "pause / resume training", bar: "pause"),
        KeyBinding([.char("n")], .step, "one step (while paused)", bar: "step"),
        KeyBinding([.char("+")], .scaleLR("*1.1"), "LR ×1.1 (fine up)"),
        KeyBinding([.char("-")], .scaleLR("/1.1"), "LR ÷1.1 (fine down)"),
        KeyBinding([.char("]")], .scaleLR("*2"), "LR ×2", bar: "lr×2"),
        KeyBinding([.char("[")], .scaleLR("/2"), "LR ÷2", bar: "lr÷2"),
        KeyBinding([.char("r")], .releaseLR, "release LR to scheduler"),
        KeyBinding([.char("R")], .resetLR, "reset LR to base"),
        KeyBinding([.char("g")], .cycleGroup, "cycle param group for LR keys"),
        KeyBinding([.char(":")], .prompt, "command prompt", bar: "cmd"),
        KeyBinding([.char("s")], .schedulerMenu, "switch scheduler", bar: "sched"),
        KeyBinding([.char("w")], .warmup, "warmup (prompt: warmup 200)"),
        KeyBinding([.char("c")], .checkpoint, "checkpoint now", bar: "ckpt"),
        KeyBinding([.char("u")], .rollback, "roll back to last checkpoint", bar: "undo"),
        KeyBinding([.char("l")], .toggleLRScale, "LR chart log / linear"),
        KeyBinding([.char("L")], .toggleLossScale, "loss chart linear / log"),
        KeyBinding([.char("z")], .cycleZoom, "zoom: run/full/last N"),
        KeyBinding([.char("e")], .cycleSmoothing, "loss smoothing 0/.6/.9/.99"),
        KeyBinding([.char("t")], .nextTheme, "next theme"),
        KeyBinding([.char("?"), .char("h")], .help, "this help", bar: "help"),
        KeyBinding([.escape], .close, "close overlay / prompt"),
        KeyBinding([.ctrl("l")], .redraw, "redraw the screen"),
        KeyBinding([.char("q")], .quit, "quit", bar: "quit"),
    ]

    /// The action of a key, or nil when the key does nothing.
    public static func action(for key: Key) -> KeyAction? {
        bindings.first(where: { $0.keys.contains(key) })?.action
    }

    /// The binding of an action.
    public static func binding(for action: KeyAction) -> KeyBinding? {
        bindings.first(where: { $0.action == action })
    }
}
