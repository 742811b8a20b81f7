/// Text that came from a file or a peer (a run's name in a log, a theme file's name, a bridge's message), made safe
/// to print on a terminal: the one sanitiser of everything lrtop prints outside its own UI (whose cell buffer shows
/// control characters as spaces).
///
/// A name like `"\u{1B}]0;pwned\u{07}\u{1B}[2J"` in a run log would otherwise retitle the window, clear the screen,
/// or forge lines of output. Removed: C0 control characters (newline and tab kept only where whole lines are
/// printed), DEL, C1 control characters, and whole escape sequences (CSI `ESC [ ... final`, OSC/DCS/APC/PM/SOS
/// strings up to BEL or ST, and two-character `ESC x` sequences), so no half of a sequence is left to print either.
public enum TerminalText {
    /// `text` without control characters or escape sequences. `keepLines`: newlines and tabs stay (a table, a
    /// multi-line message); otherwise each becomes a space and the text is one line.
    public static func sanitized(_ text: String, keepLines: Bool = false) -> String {
        // The common case, plain printable text, is returned as it is.
        if !text.unicodeScalars.contains(where: isControl) { return text }
        var out = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return scalars.next()
        }
        while let c = next() {
            switch c.value {
            case 0x1B:
                guard let kind = next() else { break }
                switch kind {
                case "[": skipControlSequence(&scalars)
                case "]", "P", "X", "^", "_": skipString(&scalars)
                default:
                    // ESC, intermediates (0x20-0x2F), one final character; anything else is not part of it.
                    var k: Unicode.Scalar? = kind
                    while let s = k, (0x20...0x2F).contains(s.value) { k = scalars.next() }
                    if let s = k, !(0x30...0x7E).contains(s.value) { pending = s }
                }
            case 0x9B: skipControlSequence(&scalars)
            case 0x90, 0x98, 0x9D, 0x9E, 0x9F: skipString(&scalars)
            case 0x0A, 0x09:
                out.append(keepLines ? c : " ")
            case 0x0D:
                if !keepLines { out.append(" ") }
            default:
                if !isControl(c) { out.append(c) }
            }
        }
        return String(out)
    }

    /// `sanitized` on one line, cut to `limit` characters (with `…`): a name quoted in an error line.
    public static func excerpt(_ text: String, limit: Int = 80) -> String {
        let clean = sanitized(text)
        return clean.count <= limit ? clean : String(clean.prefix(limit - 1)) + "…"
    }

    static func isControl(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x20 || (0x7F...0x9F).contains(c.value)
    }

    /// After `ESC [` (or C1 CSI): parameters and intermediates up to the final byte (0x40-0x7E), which ends it.
    private static func skipControlSequence(_ scalars: inout String.UnicodeScalarView.Iterator) {
        while let s = scalars.next() {
            if (0x40...0x7E).contains(s.value) || s.value == 0x1B || s.value > 0x7E { return }
        }
    }

    /// After an OSC/DCS-style introducer: everything up to BEL, `ESC \` or C1 ST.
    private static func skipString(_ scalars: inout String.UnicodeScalarView.Iterator) {
        while let s = scalars.next() {
            if s.value == 0x07 || s.value == 0x9C { return }
            if s.value == 0x1B { _ = scalars.next(); return }
        }
    }
}
