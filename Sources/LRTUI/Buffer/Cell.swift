/// One terminal cell: a grapheme with colours and flags.
public struct Cell: Hashable, Sendable {
    public var symbol: Character
    public var fg: Color
    public var bg: Color
    public var flags: CellFlags
    /// The right half of a double-width character drawn in the cell to its left; the backend skips it.
    public var isContinuation: Bool

    public init(symbol: Character = " ", fg: Color = .default, bg: Color = .default, flags: CellFlags = [],
                isContinuation: Bool = false) {
        self.symbol = symbol; self.fg = fg; self.bg = bg; self.flags = flags; self.isContinuation = isContinuation
    }

    public static let blank = Cell()

    /// Applies a style: colours that the style sets replace the cell's, flags are replaced.
    public mutating func apply(_ style: Style) {
        if let fg = style.fg { self.fg = fg }
        if let bg = style.bg { self.bg = bg }
        flags = style.flags
    }

    public var style: Style { Style(fg: fg, bg: bg, flags: flags) }
}
