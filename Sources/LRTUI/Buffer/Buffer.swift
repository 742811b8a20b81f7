/// A cell that differs between two buffers.
public struct CellChange: Hashable, Sendable {
    public var x: Int
    public var y: Int
    public var cell: Cell
}

/// A grid of cells that widgets draw into. It never touches the terminal: a backend writes it out, and tests read it
/// back with `lines()`.
public struct Buffer: Equatable, Sendable {
    public private(set) var area: Rect
    public private(set) var cells: [Cell]

    public init(area: Rect, fill: Cell = .blank) {
        self.area = area
        self.cells = Array(repeating: fill, count: area.area)
    }

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.init(area: Rect(width: width, height: height), fill: fill)
    }

    public var width: Int { area.width }
    public var height: Int { area.height }

    @inline(__always) func index(_ x: Int, _ y: Int) -> Int? {
        guard area.contains(x: x, y: y) else { return nil }
        return (y - area.y) * area.width + (x - area.x)
    }

    /// The cell at absolute coordinates; reading outside gives a blank cell, writing outside is ignored.
    public subscript(x: Int, y: Int) -> Cell {
        get { index(x, y).map { cells[$0] } ?? .blank }
        set { if let i = index(x, y) { cells[i] = newValue } }
    }

    /// Writes one symbol with a style (colours the style leaves nil keep the cell's).
    public mutating func set(symbol: Character, at pos: Position, style: Style = .plain) {
        guard let i = index(pos.x, pos.y) else { return }
        var cell = cells[i]
        cell.symbol = symbol
        cell.isContinuation = false
        cell.apply(style)
        cells[i] = cell
    }

    /// Writes a string from `at` rightwards, clipped to `clip` (default: the whole buffer) and to the buffer.
    /// Control characters are shown as spaces; wide characters take two cells. Returns the column after the text.
    @discardableResult
    public mutating func set(string: String, at pos: Position, style: Style = .plain, clip: Rect? = nil) -> Int {
        let bounds = clip.map { $0.intersection(area) } ?? area
        guard pos.y >= bounds.y && pos.y < bounds.bottom else { return pos.x + string.cellWidth }
        var x = pos.x
        for ch in string {
            var symbol = ch
            var w = ch.cellWidth
            if w == 0 {
                if ch.isNewline || ch == "\t" || ch.unicodeScalars.first.map({ $0.value < 0x20 }) == true {
                    symbol = " "; w = 1
                } else {
                    continue
                }
            }
            if x >= bounds.right { break }
            if x >= bounds.x {
                if w == 2 && x + 1 >= bounds.right {
                    set(symbol: " ", at: Position(x: x, y: pos.y), style: style)
                } else {
                    set(symbol: symbol, at: Position(x: x, y: pos.y), style: style)
                    if w == 2, let i = index(x + 1, pos.y) {
                        cells[i].symbol = " "; cells[i].apply(style); cells[i].isContinuation = true
                    }
                }
            }
            x += w
        }
        return x
    }

    /// Fills a rect with a symbol and style.
    public mutating func fill(_ rect: Rect, symbol: Character = " ", style: Style = .plain) {
        let r = rect.intersection(area)
        guard !r.isEmpty else { return }
        for y in r.y..<r.bottom {
            for x in r.x..<r.right { set(symbol: symbol, at: Position(x: x, y: y), style: style) }
        }
    }

    /// Changes the style of a rect, keeping its symbols. Flags are added to the existing ones.
    public mutating func setStyle(_ style: Style, in rect: Rect) {
        let r = rect.intersection(area)
        guard !r.isEmpty else { return }
        for y in r.y..<r.bottom {
            for x in r.x..<r.right {
                let i = index(x, y)!
                if let fg = style.fg { cells[i].fg = fg }
                if let bg = style.bg { cells[i].bg = bg }
                cells[i].flags.formUnion(style.flags)
            }
        }
    }

    /// Each row's symbols as a string (full width; wide characters appear once).
    public func lines() -> [String] {
        (0..<height).map { row in
            var s = ""
            for col in 0..<width {
                let c = cells[row * width + col]
                if !c.isContinuation { s.append(c.symbol) }
            }
            return s
        }
    }

    /// Like `lines()`, without trailing spaces.
    public func trimmedLines() -> [String] {
        lines().map { line in
            var s = Substring(line)
            while s.last == " " { s = s.dropLast() }
            return String(s)
        }
    }

    /// The row `y` (absolute) as text.
    public func line(_ y: Int) -> String {
        let all = lines()
        let i = y - area.y
        return i >= 0 && i < all.count ? all[i] : ""
    }

    /// The cells that differ from `previous`; every cell when the areas differ.
    public func diff(from previous: Buffer) -> [CellChange] {
        var out: [CellChange] = []
        if previous.area != area {
            out.reserveCapacity(cells.count)
            for (i, c) in cells.enumerated() {
                out.append(CellChange(x: area.x + i % width, y: area.y + i / width, cell: c))
            }
            return out
        }
        for i in cells.indices where cells[i] != previous.cells[i] {
            out.append(CellChange(x: area.x + i % width, y: area.y + i / width, cell: cells[i]))
        }
        return out
    }

    /// Resets every cell.
    public mutating func reset(to cell: Cell = .blank) {
        for i in cells.indices { cells[i] = cell }
    }

    /// Copies another buffer's cells into this one at its own position (clipped).
    public mutating func merge(_ other: Buffer) {
        let r = other.area.intersection(area)
        guard !r.isEmpty else { return }
        for y in r.y..<r.bottom {
            for x in r.x..<r.right { self[x, y] = other[x, y] }
        }
    }
}
