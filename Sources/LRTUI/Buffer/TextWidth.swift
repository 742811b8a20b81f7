// How many cells a character takes. Enough for the UI's own text (box drawing, braille, blocks: one cell) and for
// user text in run titles and events (East Asian wide characters and emoji: two cells).

extension Character {
    /// Terminal columns the character occupies: 0 for combining-only/control, 2 for wide, else 1.
    public var cellWidth: Int {
        guard let scalar = unicodeScalars.first else { return 0 }
        let v = scalar.value
        if v < 0x20 || (v >= 0x7f && v < 0xa0) { return 0 }
        if unicodeScalars.contains(where: { $0.value == 0xFE0F }) { return 2 }  // emoji presentation
        return Self.isWide(v) ? 2 : 1
    }

    static func isWide(_ v: UInt32) -> Bool {
        switch v {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            return true
        default:
            return false
        }
    }
}

extension String {
    /// Terminal columns the string occupies.
    public var cellWidth: Int { reduce(0) { $0 + $1.cellWidth } }

    /// The longest prefix that fits in `width` columns; when cut, the last column becomes `ellipsis` (if given).
    public func truncated(toWidth width: Int, ellipsis: Character? = "…") -> String {
        guard width > 0 else { return "" }
        if cellWidth <= width { return self }
        var out = ""
        var used = 0
        let limit = ellipsis == nil ? width : width - 1
        for ch in self {
            let w = ch.cellWidth
            if used + w > limit { break }
            out.append(ch); used += w
        }
        if let e = ellipsis { out.append(e) }
        return out
    }

    /// Pads with spaces on the right (or truncates) to exactly `width` columns.
    public func padded(toWidth width: Int) -> String {
        let t = truncated(toWidth: width, ellipsis: nil)
        return t + String(repeating: " ", count: Swift.max(0, width - t.cellWidth))
    }

    /// Pads with spaces on the left (or truncates) to exactly `width` columns.
    public func leftPadded(toWidth width: Int) -> String {
        let t = truncated(toWidth: width, ellipsis: nil)
        return String(repeating: " ", count: Swift.max(0, width - t.cellWidth)) + t
    }
}
