/// What a key did to the prompt.
public enum PromptEvent: Equatable, Sendable {
    case none
    /// Enter with this text (trimmed, not empty).
    case submit(String)
    /// Esc, or backspace on an empty line.
    case cancel
}

/// The `:` command line: editing, a cursor, history with ↑/↓, and an inline error after a rejected command.
public struct PromptState: Equatable, Sendable {
    public private(set) var text: String
    /// Cursor position in characters (0...text.count).
    public private(set) var cursor: Int
    /// Shown dimmed after the text (the current value: "lr 3.00e-4 · cosine").
    public var hint: String
    /// The error of the last submitted command, shown until the text changes.
    public var error: String?
    public private(set) var history: [String]
    var historyIndex: Int? = nil
    var draft = ""

    public init(text: String = "", hint: String = "", history: [String] = []) {
        self.text = text; self.cursor = text.count; self.hint = hint; self.history = history
    }

    public mutating func setText(_ t: String) { text = t; cursor = t.count }

    public mutating func handle(_ key: Key) -> PromptEvent {
        switch key {
        case .escape: return .cancel
        case .enter:
            let t = text.trimmingSpaces()
            if t.isEmpty { return .cancel }
            if history.last != t { history.append(t) }
            historyIndex = nil
            return .submit(t)
        case .backspace:
            if text.isEmpty { return .cancel }
            if cursor > 0 {
                let i = text.index(text.startIndex, offsetBy: cursor - 1)
                text.remove(at: i); cursor -= 1; error = nil
            }
        case .delete:
            if cursor < text.count {
                text.remove(at: text.index(text.startIndex, offsetBy: cursor)); error = nil
            }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(text.count, cursor + 1)
        case .home, .ctrl("a"): cursor = 0
        case .end, .ctrl("e"): cursor = text.count
        case .ctrl("u"): text.removeSubrange(text.startIndex..<text.index(text.startIndex, offsetBy: cursor)); cursor = 0; error = nil
        case .ctrl("k"): text = String(text.prefix(cursor)); error = nil
        case .up:
            guard !history.isEmpty else { break }
            if historyIndex == nil { draft = text; historyIndex = history.count }
            historyIndex = max(0, historyIndex! - 1)
            setText(history[historyIndex!]); error = nil
        case .down:
            guard let i = historyIndex else { break }
            if i + 1 >= history.count { historyIndex = nil; setText(draft) } else { historyIndex = i + 1; setText(history[i + 1]) }
            error = nil
        case .char(":") where error != nil && cursor == text.count:
            // `:` again after a refusal is the prompt key, not text: a fresh command (the refused one is in ↑).
            setText(""); error = nil; historyIndex = nil
        case .char(let c):
            text.insert(c, at: text.index(text.startIndex, offsetBy: cursor)); cursor += 1; error = nil
        default: break
        }
        return .none
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Draws a prompt: `:text█  hint` on the last row; an error goes on the row above when there are two rows,
/// else after the text.
public struct PromptView: Widget {
    public var state: PromptState
    public var palette: Palette
    public var prefix: String

    public init(state: PromptState, palette: Palette, prefix: String = ":") {
        self.state = state; self.palette = palette; self.prefix = prefix
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let row = area.row(area.height - 1)
        buffer.fill(row, style: palette.background)
        var x = buffer.set(string: prefix, at: Position(x: row.x, y: row.y), style: palette.highlight.bold, clip: row)
        // Keep the cursor visible: scroll the text left when it is too long.
        let chars = Array(state.text)
        let room = max(1, row.width - prefix.cellWidth - 1)
        let start = max(0, state.cursor - room + 1)
        for i in start..<(chars.count + 1) {
            guard x < row.right else { break }
            let ch: Character = i < chars.count ? chars[i] : " "
            let style = i == state.cursor ? palette.text.reversed : palette.text
            buffer.set(symbol: ch, at: Position(x: x, y: row.y), style: style)
            x += 1
        }
        x += 2
        if let error = state.error {
            let msg = "✗ " + error
            if area.height >= 2 {
                let errRow = area.row(area.height - 2)
                buffer.fill(errRow, style: palette.background)
                buffer.set(string: msg.truncated(toWidth: errRow.width), at: Position(x: errRow.x, y: errRow.y),
                           style: palette.error, clip: errRow)
            } else if x < row.right {
                buffer.set(string: msg.truncated(toWidth: row.right - x), at: Position(x: x, y: row.y),
                           style: palette.error, clip: row)
            }
        } else if !state.hint.isEmpty, x < row.right {
            let hint = state.hint.truncated(toWidth: row.right - x)
            buffer.set(string: hint, at: Position(x: row.right - hint.cellWidth, y: row.y), style: palette.inactive, clip: row)
        }
    }
}
