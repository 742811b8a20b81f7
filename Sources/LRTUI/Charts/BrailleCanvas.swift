/// A grid of braille dots, 2 wide × 4 high per cell (U+2800 ⠀ … U+28FF ⣿). Each cell takes the style of the last
/// dot drawn in it.
public struct BrailleCanvas: Sendable {
    public let width: Int
    public let height: Int
    var bits: [UInt8]
    var styles: [Style]

    /// Dot bits by [column][row] within a cell.
    static let dotBits: [[UInt8]] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]]

    public init(width: Int, height: Int) {
        self.width = max(0, width); self.height = max(0, height)
        bits = Array(repeating: 0, count: self.width * self.height)
        styles = Array(repeating: .plain, count: self.width * self.height)
    }

    /// Dots across (2 per cell).
    public var dotWidth: Int { width * 2 }
    /// Dots down (4 per cell); row 0 is the top.
    public var dotHeight: Int { height * 4 }

    public mutating func set(x: Int, y: Int, style: Style) {
        guard x >= 0, y >= 0, x < dotWidth, y < dotHeight else { return }
        let i = (y >> 2) * width + (x >> 1)
        bits[i] |= Self.dotBits[x & 1][y & 3]
        styles[i] = style
    }

    /// A vertical run of dots in column x from y0 to y1 (either order).
    public mutating func verticalRun(x: Int, from y0: Int, to y1: Int, style: Style) {
        for y in min(y0, y1)...max(y0, y1) { set(x: x, y: y, style: style) }
    }

    /// A straight line of dots (Bresenham).
    public mutating func line(from p0: (x: Int, y: Int), to p1: (x: Int, y: Int), style: Style) {
        var x0 = p0.x, y0 = p0.y
        let dx = abs(p1.x - x0), dy = -abs(p1.y - y0)
        let sx = x0 < p1.x ? 1 : -1, sy = y0 < p1.y ? 1 : -1
        var err = dx + dy
        while true {
            set(x: x0, y: y0, style: style)
            if x0 == p1.x && y0 == p1.y { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x0 += sx }
            if e2 <= dx { err += dx; y0 += sy }
        }
    }

    /// Whether the cell (cx, cy) has any dot.
    public func hasDots(cellX cx: Int, cellY cy: Int) -> Bool {
        cx >= 0 && cy >= 0 && cx < width && cy < height && bits[cy * width + cx] != 0
    }

    /// The braille character of a cell.
    public func symbol(cellX cx: Int, cellY cy: Int) -> Character {
        Character(Unicode.Scalar(0x2800 + UInt32(bits[cy * width + cx]))!)
    }

    /// Writes the cells that have dots into the buffer with their top-left at `origin`.
    public func render(into buffer: inout Buffer, at origin: Position) {
        for cy in 0..<height {
            for cx in 0..<width where bits[cy * width + cx] != 0 {
                buffer.set(symbol: symbol(cellX: cx, cellY: cy), at: Position(x: origin.x + cx, y: origin.y + cy),
                           style: styles[cy * width + cx])
            }
        }
    }
}
