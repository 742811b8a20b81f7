#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One line on a chart.
public struct ChartSeries {
    public var name: String
    public var source: any ColumnSource
    public var style: Style
    /// Only steps in this range are drawn (e.g. the planned schedule from the current step on).
    public var steps: ClosedRange<Int>?

    public init(name: String, source: any ColumnSource, style: Style, steps: ClosedRange<Int>? = nil) {
        self.name = name; self.source = source; self.style = style; self.steps = steps
    }
}

/// A single symbol at a value (validation points).
public struct ChartPoint: Sendable {
    public var step: Int
    public var value: Double
    public var symbol: Character
    public var style: Style

    public init(step: Int, value: Double, symbol: Character = "●", style: Style) {
        self.step = step; self.value = value; self.symbol = symbol; self.style = style
    }
}

/// A vertical mark at a step (interventions): `▾` on the top row, `│` through the empty cells below.
public struct ChartMarker: Sendable {
    public var step: Int
    public var style: Style
    public var symbol: Character

    public init(step: Int, style: Style, symbol: Character = "▾") {
        self.step = step; self.style = style; self.symbol = symbol
    }
}

/// Maps steps to dot columns: dot column j covers the steps s with ⌊(s−a)·count/span⌋ = j.
public struct StepColumns: Sendable, Equatable {
    public let first: Int
    public let last: Int
    public let count: Int

    public init(first: Int, last: Int, count: Int) {
        self.first = first; self.last = max(first, last); self.count = max(1, count)
    }

    public var span: Int { last - first + 1 }

    /// The steps of column j, or nil when it has none (more columns than steps).
    public func steps(ofColumn j: Int) -> ClosedRange<Int>? {
        let lo = first + (j * span + count - 1) / count
        let hi = first + ((j + 1) * span + count - 1) / count - 1
        return lo <= hi ? lo...hi : nil
    }

    /// The column of a step (may be outside 0..<count when the step is outside the range).
    public func column(of step: Int) -> Int {
        let d = step - first
        return d >= 0 ? d * count / span : -(((-d) * count + span - 1) / span)
    }
}

/// A braille line chart with a y axis (linear or log, nice labels), a step axis, markers and points.
/// When there are more steps than dot columns, each column draws the min–max envelope of its steps,
/// so a spike is never averaged away.
public struct LineChart {
    public var series: [ChartSeries]
    public var points: [ChartPoint]
    public var markers: [ChartMarker]
    /// The steps across the x axis.
    public var steps: ClosedRange<Int>
    public var scale: AxisScale
    /// Fixed y bounds (in value space); nil scales to the data.
    public var yBounds: ClosedRange<Double>?
    public var axisStyle: Style
    public var labelStyle: Style
    public var showYAxis: Bool
    public var showXAxis: Bool
    /// Name and style pairs drawn at the top right of the plot.
    public var legend: [(String, Style)]
    /// Shown in the plot when there is nothing to draw.
    public var emptyText: String
    /// The x axis labels (steps by default; wall time for runs aligned by time).
    public var xLabel: (Int) -> String = Ticks.stepLabel
    /// The labels used instead when `xLabel` would write two ticks the same (`3k 3k 3.1k` at a close zoom); nil:
    /// keep `xLabel`'s.
    public var preciseXLabel: ((Int) -> String)? = { Format.grouped($0) }

    public init(series: [ChartSeries] = [], points: [ChartPoint] = [], markers: [ChartMarker] = [],
                steps: ClosedRange<Int>, scale: AxisScale = .linear, yBounds: ClosedRange<Double>? = nil,
                axisStyle: Style = .plain, labelStyle: Style = .plain, showYAxis: Bool = true, showXAxis: Bool = true,
                legend: [(String, Style)] = [], emptyText: String = "waiting for data…") {
        self.series = series; self.points = points; self.markers = markers; self.steps = steps; self.scale = scale
        self.yBounds = yBounds; self.axisStyle = axisStyle; self.labelStyle = labelStyle
        self.showYAxis = showYAxis; self.showXAxis = showXAxis; self.legend = legend; self.emptyText = emptyText
    }

    /// The y range in axis space (log10 for log scale), padded; nil when there is no data to show.
    /// The row (0 at the top) of a plot `rows` high where the y axis puts `v`, as the tick labels are placed.
    static func row(of v: Double, range: (lo: Double, hi: Double), scale: AxisScale, rows: Int) -> Int? {
        guard let t = scale.transform(v), range.hi > range.lo else { return nil }
        let dots = Double(rows * 4 - 1)
        let f = (t - range.lo) / (range.hi - range.lo)
        return Int(max(0, min(dots, dots - (f * dots).rounded()))) / 4
    }

    public func axisRange() -> (lo: Double, hi: Double)? {
        if let b = yBounds, let lo = scale.transform(b.lowerBound), let hi = scale.transform(b.upperBound), hi > lo {
            return (lo, hi)
        }
        var lo = Double.infinity, hi = -Double.infinity
        func include(_ v: Double) {
            guard let t = scale.transform(v) else { return }
            lo = min(lo, t); hi = max(hi, t)
        }
        for s in series {
            let r = s.steps.map { $0.clamped(to: steps) } ?? steps
            guard s.steps.map({ $0.overlaps(steps) }) ?? true else { continue }
            if scale == .log {
                // The minimum may be ≤ 0; look at columns to find the smallest positive value.
                if let sum = s.source.summary(in: r) {
                    if sum.max > 0 { include(sum.max) }
                    if sum.min > 0 { include(sum.min) } else {
                        let cols = StepColumns(first: r.lowerBound, last: r.upperBound, count: 256)
                        for j in 0..<cols.count {
                            if let sr = cols.steps(ofColumn: j), let c = s.source.summary(in: sr) {
                                if c.min > 0 { include(c.min) } else if c.max > 0 { include(c.max) }
                            }
                        }
                    }
                }
            } else if let sum = s.source.summary(in: r) {
                include(sum.min); include(sum.max)
            }
        }
        for p in points where steps.contains(p.step) { include(p.value) }
        guard lo.isFinite, hi.isFinite else { return nil }
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            let pad = scale == .log ? 0.25 : max(abs(hi) * 0.1, 1e-3)
            return (lo - pad, hi + pad)
        }
        let pad = (hi - lo) * 0.05
        return (lo - pad, hi + pad)
    }

    /// Draws the chart; returns the plot's cells (without the axes), where column x maps to steps by
    /// `StepColumns(first: steps.lowerBound, last: steps.upperBound, count: plot.width)`.
    @discardableResult
    public func draw(into buffer: inout Buffer, area: Rect) -> Rect? {
        guard area.width >= 1, area.height >= 1 else { return nil }
        let xAxisRows = showXAxis ? 1 : 0
        let plotHeight = area.height - xAxisRows
        guard plotHeight >= 1 else { return nil }
        let range = axisRange()

        // Y labels decide the left margin.
        var ticks: [Double] = []
        if let range, showYAxis {
            let maxTicks = max(2, plotHeight / 2 + 1)
            if scale == .log {
                ticks = Ticks.log(range.lo, range.hi, maxCount: maxTicks)
                if ticks.isEmpty {
                    ticks = Ticks.linear(range.lo, range.hi, maxCount: maxTicks).map { pow10($0) }
                }
            } else {
                ticks = Ticks.linear(range.lo, range.hi, maxCount: maxTicks)
            }
        }
        // The top row names its value when no tick falls on it: the chart's highest value is what a person reads
        // first (an LR chart's ticks often all sit below its top row).
        if let range, showYAxis, plotHeight >= 3, let top = Ticks.topLabelValue(range, scale: scale, rows: plotHeight),
           !ticks.contains(where: { Self.row(of: $0, range: range, scale: scale, rows: plotHeight) == 0 }) {
            ticks.insert(top, at: 0)
        }
        let labels = ticks.map(Ticks.label)
        let labelWidth = showYAxis ? min(max(1, labels.map(\.cellWidth).max() ?? 1), max(1, area.width / 3)) : 0
        let axisCols = showYAxis ? labelWidth + 1 : 0
        let plot = Rect(x: area.x + axisCols, y: area.y, width: area.width - axisCols, height: plotHeight)
        guard plot.width >= 1 else { return nil }
        var canvas = BrailleCanvas(width: plot.width, height: plot.height)
        let cols = StepColumns(first: steps.lowerBound, last: steps.upperBound, count: canvas.dotWidth)

        func dotY(_ v: Double) -> Int? {
            guard let range, let t = scale.transform(v) else { return nil }
            let f = (t - range.lo) / (range.hi - range.lo)
            let y = Double(canvas.dotHeight - 1) - (f * Double(canvas.dotHeight - 1)).rounded()
            return Int(min(Double(canvas.dotHeight - 1), max(0, y)))
        }

        if range != nil {
            for s in series {
                guard s.steps.map({ $0.overlaps(steps) }) ?? true else { continue }
                let limit = (s.steps ?? steps).clamped(to: steps)
                var previous: (x: Int, y: Int)? = nil
                let jLo = max(0, cols.column(of: limit.lowerBound)), jHi = min(cols.count - 1, cols.column(of: limit.upperBound))
                guard jLo <= jHi else { continue }
                for j in jLo...jHi {
                    guard let sr = cols.steps(ofColumn: j) else { continue }
                    let lo = max(sr.lowerBound, limit.lowerBound), hi = min(sr.upperBound, limit.upperBound)
                    guard lo <= hi, let c = s.source.summary(in: lo...hi) else { continue }
                    // On a log axis values ≤ 0 sink to the bottom row.
                    let yFirst = dotY(c.first) ?? canvas.dotHeight - 1
                    let yLast = dotY(c.last) ?? canvas.dotHeight - 1
                    let yMin = dotY(c.min) ?? canvas.dotHeight - 1
                    let yMax = dotY(c.max) ?? canvas.dotHeight - 1
                    if let p = previous {
                        canvas.line(from: p, to: (j, yFirst), style: s.style)
                    }
                    canvas.verticalRun(x: j, from: yMin, to: yMax, style: s.style)
                    previous = (j, yLast)
                }
            }
        }
        canvas.render(into: &buffer, at: Position(x: plot.x, y: plot.y))

        // Markers: ▾ on the top row, │ through empty cells.
        for m in markers where steps.contains(m.step) {
            let cx = cols.column(of: m.step) / 2
            guard cx >= 0 && cx < plot.width else { continue }
            for cy in 1..<max(1, plot.height) where !canvas.hasDots(cellX: cx, cellY: cy) {
                buffer.set(symbol: "│", at: Position(x: plot.x + cx, y: plot.y + cy), style: m.style.removing(.bold).dim)
            }
            buffer.set(symbol: m.symbol, at: Position(x: plot.x + cx, y: plot.y), style: m.style)
        }

        // Points.
        for p in points where steps.contains(p.step) {
            guard let dy = dotY(p.value) else { continue }
            let cx = cols.column(of: p.step) / 2
            guard cx >= 0 && cx < plot.width else { continue }
            buffer.set(symbol: p.symbol, at: Position(x: plot.x + cx, y: plot.y + dy / 4), style: p.style)
        }

        if range == nil && !emptyText.isEmpty {
            let t = emptyText.truncated(toWidth: plot.width)
            buffer.set(string: t, at: Position(x: plot.x + max(0, (plot.width - t.cellWidth) / 2), y: plot.y + plot.height / 2),
                       style: labelStyle, clip: plot)
        }

        // Y axis: labels right-aligned, ┤ at ticks.
        if showYAxis {
            let axisX = area.x + labelWidth
            for row in 0..<plot.height {
                buffer.set(symbol: "│", at: Position(x: axisX, y: plot.y + row), style: axisStyle)
            }
            if let range {
                var usedRows = Set<Int>()
                for (v, label) in zip(ticks, labels) {
                    guard let t = scale.transform(v) else { continue }
                    let f = (t - range.lo) / (range.hi - range.lo)
                    let dy = Double(canvas.dotHeight - 1) - (f * Double(canvas.dotHeight - 1)).rounded()
                    let row = Int(max(0, min(Double(canvas.dotHeight - 1), dy))) / 4
                    guard !usedRows.contains(row) else { continue }
                    usedRows.insert(row)
                    let text = label.leftPadded(toWidth: labelWidth)
                    buffer.set(string: text, at: Position(x: area.x, y: plot.y + row), style: labelStyle)
                    buffer.set(symbol: "┤", at: Position(x: axisX, y: plot.y + row), style: axisStyle)
                }
            }
        }

        // X axis: a line with step labels set into it.
        if showXAxis {
            let y = plot.bottom
            let startX = showYAxis ? area.x + labelWidth : plot.x
            if showYAxis { buffer.set(symbol: "└", at: Position(x: startX, y: y), style: axisStyle) }
            for x in plot.x..<plot.right { buffer.set(symbol: "─", at: Position(x: x, y: y), style: axisStyle) }
            let maxLabels = max(1, plot.width / 8)
            let step = Ticks.integerStep(span: steps.upperBound - steps.lowerBound, maxCount: maxLabels)
            let firstTick = (steps.lowerBound + step - 1) / step * step
            let tickSteps = Array(stride(from: firstTick, through: steps.upperBound, by: step))
            var label = xLabel
            if let precise = preciseXLabel, Set(tickSteps.map(xLabel)).count < tickSteps.count { label = precise }
            var nextFree = plot.x
            for tick in tickSteps {
                let label = label(tick)
                let cx = plot.x + cols.column(of: tick) / 2
                var lx = cx - label.cellWidth / 2
                lx = max(lx, plot.x)
                if lx + label.cellWidth > plot.right { lx = plot.right - label.cellWidth }
                if lx >= nextFree && lx >= plot.x {
                    buffer.set(string: label, at: Position(x: lx, y: y), style: labelStyle, clip: area)
                    nextFree = lx + label.cellWidth + 1
                }
            }
        }

        // Legend at the top right of the plot.
        if !legend.isEmpty {
            var items: [(String, Style)] = []
            var width = 0
            for (name, style) in legend {
                let w = name.cellWidth + 3
                if width + w > plot.width { break }
                items.append((name, style)); width += w
            }
            var x = plot.right - width
            for (name, style) in items {
                buffer.set(string: "━ ", at: Position(x: x, y: plot.y), style: style)
                x = buffer.set(string: name + " ", at: Position(x: x + 2, y: plot.y), style: labelStyle)
            }
        }
        return plot
    }

    public func render(into buffer: inout Buffer, area: Rect) { draw(into: &buffer, area: area) }

    func pow10(_ v: Double) -> Double { pow(10, v) }
}
