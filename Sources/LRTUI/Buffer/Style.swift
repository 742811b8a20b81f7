/// Text attributes a terminal can show without colours.
public struct CellFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bold = CellFlags(rawValue: 1 << 0)
    public static let dim = CellFlags(rawValue: 1 << 1)
    public static let reverse = CellFlags(rawValue: 1 << 2)
    public static let underline = CellFlags(rawValue: 1 << 3)
}

/// What to paint over a cell: a nil colour keeps the cell's colour (so text can be drawn over a filled background).
public struct Style: Hashable, Sendable {
    public var fg: Color?
    public var bg: Color?
    public var flags: CellFlags

    public init(fg: Color? = nil, bg: Color? = nil, flags: CellFlags = []) {
        self.fg = fg; self.bg = bg; self.flags = flags
    }

    public static let plain = Style()

    public func fg(_ color: Color?) -> Style { var s = self; s.fg = color; return s }
    public func bg(_ color: Color?) -> Style { var s = self; s.bg = color; return s }
    public func adding(_ flags: CellFlags) -> Style { var s = self; s.flags.formUnion(flags); return s }
    public func removing(_ flags: CellFlags) -> Style { var s = self; s.flags.subtract(flags); return s }
    public var bold: Style { adding(.bold) }
    public var dim: Style { adding(.dim) }
    public var reversed: Style { adding(.reverse) }
    public var underlined: Style { adding(.underline) }

    /// `other` drawn on top of self: its colours win where set, flags are combined.
    public func patched(with other: Style) -> Style {
        Style(fg: other.fg ?? fg, bg: other.bg ?? bg, flags: flags.union(other.flags))
    }
}
