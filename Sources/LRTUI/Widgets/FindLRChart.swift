import Foundation
import LRLog
import LRCommand

/// The LR range test's chart: smoothed loss against the LR on a log x axis, every suggestion marked on the curve
/// with its letter and named in a legend, and a cursor (a vertical line, its LR and loss in the title row).
public struct FindLRChart: Widget {
    public var curve: LRRangeCurve
    /// The LR under the cursor (nil: none drawn).
    public var cursorLR: Double?
    public var palette: Palette

    public init(curve: LRRangeCurve, cursorLR: Double?, palette: Palette) {
        self.curve = curve; self.cursorLR = cursorLR; self.palette = palette
    }

    /// Each suggestion's letter on the curve, in the legend's order.
    public static let letters: [String: Character] = ["valley": "V", "steep": "S", "min/10": "M", "slide": "D", "lightning": "L"]

    /// The x range in log10(LR): the curve's LRs and every suggestion (min/10 may lie left of the first point).
    var xRange: ClosedRange<Double>? {
        let xs = (curve.lrs + curve.suggestions.named.map(\.lr)).filter { $0 > 0 && $0.isFinite }.map(log10)
        guard let lo = xs.min(), let hi = xs.max() else { return nil }
        return lo...(hi > lo ? hi : lo + 1)
    }

    /// The y range: from the lowest loss up to as far again above the loss the sweep started from (the diverging
    /// tail beyond is cut at the top, as it would flatten the valley to a line); when the loss only rises (a trained
    /// model), up to the 4x stopping level, so the rise shows.
    var yRange: ClosedRange<Double>? {
        let finite = curve.losses.filter(\.isFinite)
        guard let lo = finite.min(), let top = finite.max() else { return nil }
        let minIndex = curve.losses.firstIndex(of: lo) ?? 0
        let head = curve.losses[...minIndex].filter(\.isFinite).max() ?? lo
        let descent = head - lo
        var hi = descent > 0.05 * abs(lo) ? min(top, head + descent) : min(top, LRRangeSettings.divergenceFactor * lo)
        hi = max(hi, head)
        if hi <= lo { hi = lo + max(1e-6, abs(lo) * 0.01) }
        let pad = (hi - lo) * 0.05
        return (lo - pad)...(hi + pad)
    }

    /// The plot's area inside `area` (left of it the y labels, under it the x labels).
    public static func plotArea(_ area: Rect) -> Rect {
        Rect(x: area.x + 7, y: area.y, width: max(0, area.width - 8), height: max(0, area.height - 1))
    }

    /// The LR at a plot column (for the mouse), nil outside the plot.
    public func lr(atColumn x: Int, in area: Rect) -> Double? {
        let plot = Self.plotArea(area)
        guard let xr = xRange, plot.width > 1, x >= plot.x, x < plot.right else { return nil }
        let t = Double(x - plot.x) / Double(plot.width - 1)
        return pow(10, xr.lowerBound + t * (xr.upperBound - xr.lowerBound))
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        let plot = Self.plotArea(area)
        guard plot.width >= 4, plot.height >= 2, let xr = xRange, let yr = yRange else {
            let text = curve.count == 0 ? "waiting for the sweep's first steps …" : "too few points to draw"
            _ = buffer.set(string: text, at: Position(x: area.x + 1, y: area.y + area.height / 2), style: palette.inactive, clip: area)
            return
        }
        var canvas = BrailleCanvas(width: plot.width, height: plot.height)
        func dotX(_ lr: Double) -> Int {
            Int(((log10(lr) - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * Double(canvas.dotWidth - 1)).rounded())
        }
        func dotY(_ loss: Double) -> Int {
            let t = (min(max(loss, yr.lowerBound), yr.upperBound) - yr.lowerBound) / (yr.upperBound - yr.lowerBound)
            return Int(((1 - t) * Double(canvas.dotHeight - 1)).rounded())
        }
        var previous: (x: Int, y: Int)? = nil
        for (lr, loss) in zip(curve.lrs, curve.losses) {
            guard loss.isFinite, lr > 0 else { previous = nil; continue }
            let p = (x: dotX(lr), y: dotY(loss))
            if let q = previous { canvas.line(from: q, to: p, style: palette.smooth) } else { canvas.set(x: p.x, y: p.y, style: palette.smooth) }
            previous = p
        }
        // The raw losses, dim, behind: how noisy the smoothed curve is.
        for (lr, loss) in zip(curve.lrs, curve.rawLosses) where loss.isFinite && yr.contains(loss) {
            let x = dotX(lr), y = dotY(loss)
            if !canvas.hasDots(cellX: x / 2, cellY: y / 4) { canvas.set(x: x, y: y, style: palette.loss.dim) }
        }
        canvas.render(into: &buffer, at: Position(x: plot.x, y: plot.y))

        // Axes: y labels on the left, x labels (decades) under the plot.
        for v in Ticks.linear(yr.lowerBound, yr.upperBound, maxCount: max(2, plot.height / 3)) {
            let y = plot.y + dotY(v) / 4
            _ = buffer.set(string: Format.metric(v).leftPadded(toWidth: 6) + "┤", at: Position(x: area.x, y: y), style: palette.axis, clip: area)
        }
        let labelRow = plot.bottom
        var nextFree = plot.x
        for v in Ticks.log(xr.lowerBound, xr.upperBound, maxCount: max(2, plot.width / 8)) {
            let x = plot.x + dotX(v) / 2
            let label = Ticks.label(v)
            guard x >= nextFree, x + label.count <= area.right else { continue }
            _ = buffer.set(string: label, at: Position(x: x, y: labelRow), style: palette.axis, clip: area)
            nextFree = x + label.count + 1
        }

        // The cursor: a vertical line through the empty cells of its column.
        if let c = cursorLR, c > 0 {
            let x = plot.x + dotX(c) / 2
            if x >= plot.x && x < plot.right {
                for y in plot.y..<plot.bottom where [" ", "\u{2800}"].contains(buffer[x, y].symbol) {
                    buffer.set(symbol: "│", at: Position(x: x, y: y), style: palette.highlight)
                }
            }
        }
        // The suggestions: their letters on the curve.
        for s in curve.suggestions.named {
            guard let letter = Self.letters[s.name], let loss = curve.loss(at: s.lr) else { continue }
            let x = plot.x + dotX(s.lr) / 2, y = plot.y + dotY(loss) / 4
            _ = buffer.set(string: String(letter), at: Position(x: x, y: y), style: palette.marker.bold.reversed, clip: plot)
        }
    }
}
