/// The frame for a terminal without braille, rounded corners or other symbols beyond ASCII (the Linux console,
/// `--ascii`): boxes become `+-|`, braille charts become dot charts (`'` `.` `:`), bars become `#`, and each symbol
/// a single ASCII character, so every cell keeps its width and the layout stays as it is.
public enum ASCIIFallback {
    /// Whether a terminal needs the fallback: the Linux console, or the user asked for it.
    public static func needed(environment: [String: String], forced: Bool) -> Bool {
        if forced { return true }
        let term = (environment["TERM"] ?? "").lowercased()
        return term == "linux" || term.hasPrefix("linux-") || term == "vt100" || term == "vt220"
    }

    public static func symbol(_ ch: Character) -> Character {
        guard let scalar = ch.unicodeScalars.first, !ch.isASCII else { return ch }
        let v = scalar.value
        if (0x2800...0x28FF).contains(v) {
            // Braille dots 1,2,4,5 are the top half of the cell; 3,6,7,8 the bottom.
            let bits = v - 0x2800
            let top = bits & 0b0001_1011 != 0, bottom = bits & 0b1110_0100 != 0
            return top && bottom ? ":" : top ? "'" : bottom ? "." : " "
        }
        switch ch {
        case "╭", "╮", "╰", "╯", "┌", "┐", "└", "┘", "├", "┤", "┬", "┴", "┼": return "+"
        case "─", "━", "═": return "-"
        case "│", "┃", "║", "❚": return "|"
        case "█", "▇", "▆", "▅": return "#"
        case "▄", "▃", "▂", "▁": return "_"
        case "░", "▒": return "."
        case "▾", "▼": return "v"
        case "▸", "▶", "›", "→": return ">"
        case "←": return "<"
        case "↑": return "^"
        case "↓": return "v"
        case "●", "○", "◉": return "o"
        case "◆", "★", "■": return "*"
        case "✗": return "x"
        case "✓": return "+"
        case "↺": return "@"
        case "·": return "."
        case "…": return "~"
        case "×": return "x"
        case "÷": return "/"
        case "␣": return "_"
        case "σ": return "s"
        case "β": return "b"
        case "η": return "n"
        default: return "?"
        }
    }

    /// The buffer with every cell's symbol made ASCII (wide characters become one symbol and a space).
    public static func apply(_ buffer: Buffer) -> Buffer {
        var out = buffer
        for y in buffer.area.y..<buffer.area.bottom {
            for x in buffer.area.x..<buffer.area.right {
                var cell = buffer[x, y]
                if cell.isContinuation { cell.isContinuation = false; cell.symbol = " " }
                else { cell.symbol = symbol(cell.symbol) }
                out[x, y] = cell
            }
        }
        return out
    }
}
