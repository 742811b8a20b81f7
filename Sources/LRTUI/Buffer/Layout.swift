/// How much of a split a part gets.
public enum Constraint: Hashable, Sendable {
    /// Exactly n cells (shrinks only when the total does not fit).
    case length(Int)
    /// A percentage of the total.
    case percentage(Int)
    /// At least n cells, and a share of what is left like `.fill(1)`.
    case min(Int)
    /// A share of what is left, by weight.
    case fill(Int)
}

public enum Direction: Sendable {
    case horizontal, vertical
}

extension Rect {
    /// Splits into consecutive parts along a direction (ratatui's Layout, simplified).
    public func split(_ direction: Direction, _ constraints: [Constraint], spacing: Int = 0) -> [Rect] {
        guard !constraints.isEmpty else { return [] }
        let total = direction == .horizontal ? width : height
        let available = Swift.max(0, total - spacing * (constraints.count - 1))
        var sizes = constraints.map { c -> Int in
            switch c {
            case .length(let n): return Swift.max(0, n)
            case .percentage(let p): return available * Swift.max(0, p) / 100
            case .min(let n): return Swift.max(0, n)
            case .fill: return 0
            }
        }
        var remaining = available - sizes.reduce(0, +)
        if remaining < 0 {
            // Shrink from the last part backwards.
            var i = sizes.count - 1
            while remaining < 0 && i >= 0 {
                let take = Swift.min(sizes[i], -remaining)
                sizes[i] -= take; remaining += take; i -= 1
            }
        } else if remaining > 0 {
            let weights = constraints.map { c -> Int in
                switch c {
                case .fill(let w): return Swift.max(0, w)
                case .min: return 1
                default: return 0
                }
            }
            let totalWeight = weights.reduce(0, +)
            if totalWeight > 0 {
                var given = 0
                var lastWeighted = 0
                for (i, w) in weights.enumerated() where w > 0 {
                    let share = remaining * w / totalWeight
                    sizes[i] += share; given += share; lastWeighted = i
                }
                sizes[lastWeighted] += remaining - given
            }
        }
        var out: [Rect] = []
        var offset = direction == .horizontal ? x : y
        for size in sizes {
            if direction == .horizontal {
                out.append(Rect(x: offset, y: y, width: size, height: height))
            } else {
                out.append(Rect(x: x, y: offset, width: width, height: size))
            }
            offset += size + spacing
        }
        return out
    }
}
