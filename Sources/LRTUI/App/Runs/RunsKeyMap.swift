import LRCommand

/// What a key does in the runs table.
public enum RunsAction: Hashable, Sendable {
    case move(Int)
    case page(Int)
    case first, last
    /// Tags (or untags) the selected row and moves down, as htop's space.
    case tag
    case tagAll, untagAll
    case sortMenu
    /// `<` / `>`: sort by the previous / next column.
    case shiftSort(Int)
    case invertSort
    case filter
    /// The attach dashboard of the selected run; esc comes back.
    case open
    case expand, collapse
    /// The `:` prompt: a steering command for every tagged run (or the selected one).
    case prompt
    /// `pause` for the running ones, `resume` for the paused ones.
    case togglePause
    case send(String)
    case overlay
    case stacks
    case help
    case clearFilter
    case redraw
    case quit
}

/// The runs table's keys, in help order: htop's where htop has one (space tags, c / U tag and untag all, F6 and
/// `<` `>` sort, `/` and F4 filter, F1 help, F10 quit), the dashboard's for steering (`+ - [ ]`, `:`).
public enum RunsKeyMap {
    public struct Binding: Sendable {
        public var keys: [Key]
        public var action: RunsAction
        public var help: String
        public var bar: String?
    }

    /// The LR keys do what they do in the dashboard (`KeyMap`), sent to every tagged run.
    static func lrCommand(_ key: Character) -> String {
        guard case .scaleLR(let f)? = KeyMap.action(for: .char(key), mode: .live) else { return "" }
        return Command.lr(group: nil, .scale(f)).description
    }

    public static let table: [Binding] = [
        Binding(keys: [.up, .down], action: .move(-1), help: "select the run above / below (mouse: click, wheel)"),
        Binding(keys: [.pageUp, .pageDown, .home, .end], action: .page(-1), help: "page up / down, first / last run"),
        Binding(keys: [.space], action: .tag, help: "tag / untag the run (commands act on the tagged runs)", bar: "tag"),
        Binding(keys: [.char("c"), .char("U")], action: .tagAll, help: "tag every run shown / untag all"),
        Binding(keys: [.enter], action: .open, help: "open the run's dashboard (esc or q comes back)", bar: "open"),
        Binding(keys: [.right, .left], action: .expand, help: "expand / collapse a DDP job into its ranks"),
        Binding(keys: [.char(":")], action: .prompt, help: "a steering command for the tagged runs (lr *0.5, ckpt, stop…)", bar: "cmd"),
        Binding(keys: [.char("p")], action: .togglePause, help: "pause the running / resume the paused tagged runs", bar: "pause"),
        Binding(keys: [.char("+"), .char("-")], action: .send(lrCommand("+")), help: "LR ×1.1 / ÷1.1 on the tagged runs"),
        Binding(keys: [.char("]"), .char("[")], action: .send(lrCommand("]")), help: "LR ×2 / ÷2 on the tagged runs"),
        Binding(keys: [.char("C")], action: .send(Command.checkpoint.description), help: "checkpoint the tagged runs"),
        Binding(keys: [.char("o")], action: .overlay, help: "overlay the tagged runs' loss and LR in one live dashboard", bar: "overlay"),
        Binding(keys: [.char("S")], action: .stacks, help: "stack of every thread (every rank) of the selected run", bar: "stacks"),
        Binding(keys: [.function(6), .char("<"), .char(">"), .char("I")], action: .sortMenu,
                help: "sort menu / by the previous / next column / invert", bar: "sort"),
        Binding(keys: [.char("/"), .function(4)], action: .filter, help: "filter by name, kind, state, host (esc clears)", bar: "filter"),
        Binding(keys: [.char("?"), .function(1)], action: .help, help: "this help", bar: "help"),
        Binding(keys: [.ctrl("l")], action: .redraw, help: "redraw the screen"),
        Binding(keys: [.char("q"), .function(10)], action: .quit, help: "quit (the runs go on)", bar: "quit"),
    ]

    /// The action of a key (pairs of keys in one help row do opposite things).
    public static func action(for key: Key) -> RunsAction? {
        switch key {
        case .up: return .move(-1)
        case .down: return .move(1)
        case .pageUp: return .page(-1)
        case .pageDown: return .page(1)
        case .home: return .first
        case .end: return .last
        case .char("c"): return .tagAll
        case .char("U"): return .untagAll
        case .right: return .expand
        case .left: return .collapse
        case .char("-"): return .send(lrCommand("-"))
        case .char("["): return .send(lrCommand("["))
        case .char("<"): return .shiftSort(-1)
        case .char(">"): return .shiftSort(1)
        case .char("I"): return .invertSort
        case .escape: return .clearFilter
        default: return table.first { $0.keys.contains(key) }?.action
        }
    }

    /// The help overlay's rows.
    public static var helpRows: [(key: String, help: String)] {
        table.map { b in (b.keys.map { $0 == .space ? "space" : $0.description }.joined(separator: " "), b.help) }
    }
}
