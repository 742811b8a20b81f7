/// A cell position.
public struct Position: Hashable, Sendable {
    public var x: Int
    public var y: Int
    public init(x: Int, y: Int) { self.x = x; self.y = y }
}

/// A rectangle of cells; `x`, `y` is the top-left cell.
public struct Rect: Hashable, Sendable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }

    public init(width: Int, height: Int) { self.init(x: 0, y: 0, width: width, height: height) }

    public static let zero = Rect(x: 0, y: 0, width: 0, height: 0)

    public var isEmpty: Bool { width <= 0 || height <= 0 }
    /// One past the last column.
    public var right: Int { x + width }
    /// One past the last row.
    public var bottom: Int { y + height }
    public var area: Int { width * height }
    public var description: String { "Rect(\(x),\(y) \(width)x\(height))" }

    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < right && py >= y && py < bottom }

    public func intersection(_ other: Rect) -> Rect {
        let nx = max(x, other.x), ny = max(y, other.y)
        let nr = min(right, other.right), nb = min(bottom, other.bottom)
        return Rect(x: nx, y: ny, width: nr - nx, height: nb - ny)
    }

    /// Shrinks by the given margins (never below zero size).
    public func inset(top: Int = 0, left: Int = 0, bottom: Int = 0, right: Int = 0) -> Rect {
        Rect(x: x + left, y: y + top, width: width - left - right, height: height - top - bottom)
    }

    public func inset(by margin: Int) -> Rect { inset(top: margin, left: margin, bottom: margin, right: margin) }

    /// The single row `y + i` of this rect.
    public func row(_ i: Int) -> Rect { Rect(x: x, y: y + i, width: width, height: i < height && i >= 0 ? 1 : 0) }

    /// A rect of the given size centred in this one (clipped to it).
    public func centered(width w: Int, height h: Int) -> Rect {
        let cw = min(w, width), ch = min(h, height)
        return Rect(x: x + (width - cw) / 2, y: y + (height - ch) / 2, width: cw, height: ch)
    }
}

extension Rect {
    public func contains(_ p: Position) -> Bool { contains(x: p.x, y: p.y) }
}
