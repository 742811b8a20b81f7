/// A key press, as the backends report it.
public enum Key: Hashable, Sendable, CustomStringConvertible {
    case char(Character)
    case enter, escape, backspace, delete, tab, backTab
    case up, down, left, right, home, end, pageUp, pageDown
    /// Ctrl + a letter (lowercase), other than the ones with their own case (tab, enter, backspace).
    case ctrl(Character)
    case function(Int)
    /// The terminal changed size.
    case resize
    /// A mouse click or wheel turn at a cell (0-based column and row).
    case mouse(MouseEvent)

    public static let space = Key.char(" ")

    /// The key as the help overlay and key bar show it.
    public var description: String {
        switch self {
        case .char(" "): return "space"
        case .char(let c): return String(c)
        case .enter: return "enter"
        case .escape: return "esc"
        case .backspace: return "backspace"
        case .delete: return "del"
        case .tab: return "tab"
        case .backTab: return "shift-tab"
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .home: return "home"
        case .end: return "end"
        case .pageUp: return "pgup"
        case .pageDown: return "pgdn"
        case .ctrl(let c): return "ctrl-\(c)"
        case .function(let n): return "F\(n)"
        case .resize: return "resize"
        case .mouse(let m): return "mouse \(m.kind) at \(m.x),\(m.y)"
        }
    }

    /// Keys from a string of plain characters (tests, scripted input): `Key.sequence("lr 1e-3")`.
    public static func sequence(_ text: String) -> [Key] { text.map { .char($0) } }

    /// The key for a byte/code point of terminal input without escape sequences: 13/10 → enter, 27 → escape,
    /// 127/8 → backspace, 9 → tab, 1...26 → ctrl-letter, else the character.
    public static func fromCodePoint(_ v: UInt32) -> Key? {
        switch v {
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 9: return .tab
        case 1...26: return .ctrl(Character(Unicode.Scalar(v + 96)!))
        case 0, 28...31: return nil
        default:
            guard let s = Unicode.Scalar(v) else { return nil }
            return .char(Character(s))
        }
    }
}

/// What the mouse did, where.
public struct MouseEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case click, wheelUp, wheelDown }
    public var kind: Kind
    public var x: Int
    public var y: Int
    public init(_ kind: Kind, x: Int, y: Int) { self.kind = kind; self.x = x; self.y = y }
}
