/// A bar per value (`▁▂▃▄▅▆▇█`), one or more rows high, newest on the right, coloured along a gradient.
public struct Sparkline: Widget {
    public var values: [Double?]
    /// The value of a full bar; nil uses the largest value.
    public var maxValue: Double?
    public var gradient: Gradient?
    public var style: Style

    static let bars: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    public init(values: [Double?], maxValue: Double? = nil, gradient: Gradient? = nil, style: Style = .plain) {
        self.values = values; self.maxValue = maxValue; self.gradient = gradient; self.style = style
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let shown = values.suffix(area.width)
        let top = maxValue ?? shown.compactMap { $0 }.filter(\.isFinite).max() ?? 0
        let x0 = area.right - shown.count
        for (i, v) in shown.enumerated() {
            guard let v, v.isFinite, top > 0 else { continue }
            let t = max(0, min(1, v / top))
            var eighths = Int((t * Double(area.height * 8)).rounded())
            if v > 0 && eighths == 0 { eighths = 1 }
            for row in 0..<area.height {
                let fill = max(0, min(8, eighths - row * 8))
                guard fill > 0 else { break }
                let y = area.bottom - 1 - row
                var s = style
                if let g = gradient {
                    let level = area.height == 1 ? t : Double(row + 1) / Double(area.height)
                    s = s.fg(g.color(at: level))
                }
                buffer.set(symbol: Self.bars[fill], at: Position(x: x0 + i, y: y), style: s)
            }
        }
    }
}

/// A horizontal progress bar with a label after it: `█████▌░░░░ 55%`.
public struct Gauge: Widget {
    public var ratio: Double
    public var label: String
    public var filled: Style
    public var empty: Style

    static let partial: [Character] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"].map { $0.first ?? " " }

    public init(ratio: Double, label: String? = nil, filled: Style = .plain, empty: Style = Style().dim) {
        self.ratio = ratio.isFinite ? max(0, min(1, ratio)) : 0
        self.label = label ?? Format.percent(self.ratio, digits: 0)
        self.filled = filled; self.empty = empty
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let labelText = label.isEmpty ? "" : " " + label
        let barWidth = max(0, area.width - labelText.cellWidth)
        let eighths = Int((ratio * Double(barWidth * 8)).rounded(.down))
        let full = eighths / 8, rest = eighths % 8
        for x in 0..<barWidth {
            let pos = Position(x: area.x + x, y: area.y)
            if x < full { buffer.set(symbol: "█", at: pos, style: filled) }
            else if x == full && rest > 0 { buffer.set(symbol: Self.partial[rest], at: pos, style: filled) }
            else { buffer.set(symbol: "░", at: pos, style: empty) }
        }
        buffer.set(string: labelText, at: Position(x: area.x + barWidth, y: area.y), style: .plain, clip: area)
    }
}
