#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The metrics grid (W&B LEET's grid, in the terminal): a small braille chart per metric, as many as the area holds,
// sized to it. Pure drawing: the dashboard decides what the charts hold (Dashboard+Metrics.swift).

/// One chart of the grid: a metric, drawn for each run that has it.
public struct MetricsGridChart {
    public var name: String
    /// One line per run that has the metric, the primary run's last (on top).
    public var series: [ChartSeries]
    /// The value shown at the top right (at the cursor, else at the view step), formatted.
    public var valueText: String
    public var scale: AxisScale
    /// Drawn in the main view's loss panel too.
    public var pinned: Bool

    public init(name: String, series: [ChartSeries], valueText: String = "", scale: AxisScale = .linear, pinned: Bool = false) {
        self.name = name; self.series = series; self.valueText = valueText; self.scale = scale; self.pinned = pinned
    }
}

/// Where the grid puts its charts in an area: the number of columns whose charts come closest to a pleasant shape
/// while every chart fits; when they cannot all fit at the smallest size, as many rows as fit, scrolled.
public struct MetricsGridLayout: Equatable, Sendable {
    /// The smallest chart: a frame, a few label columns and a plot of a few rows with its step axis.
    public static let minimumChart = (width: 26, height: 7)
    /// Width to height (in cells) the layout aims at: a cell is about twice as tall as it is wide, so a 3.2:1 chart
    /// looks about 1.6:1.
    static let preferredAspect = 3.2

    public let area: Rect
    public let count: Int
    public let columns: Int
    /// Rows of charts on screen at once.
    public let visibleRows: Int

    public init(area: Rect, count: Int) {
        self.area = area
        self.count = count
        let maxColumns = max(1, area.width / Self.minimumChart.width)
        let maxRows = max(1, area.height / Self.minimumChart.height)
        var best: (columns: Int, score: Double)? = nil
        if count > 0 {
            for c in 1...min(maxColumns, count) {
                let rows = (count + c - 1) / c
                guard rows <= maxRows else { continue }
                let aspect = Double(area.width / c) / Double(max(1, area.height / rows))
                let score = abs(log(aspect / Self.preferredAspect))
                if best == nil || score < best!.score { best = (c, score) }
            }
        }
        columns = best?.columns ?? maxColumns
        visibleRows = min(maxRows, max(1, (count + columns - 1) / columns))
    }

    /// Rows of charts in all.
    public var rows: Int { max(1, (count + columns - 1) / columns) }
    /// Whether every chart is on screen.
    public var fitsAll: Bool { rows <= visibleRows }

    /// The first row to show so that `row` is on screen, moving as little as possible from `top`.
    public func scroll(_ top: Int, keeping row: Int?) -> Int {
        var t = max(0, min(top, rows - visibleRows))
        if let row {
            if row < t { t = row }
            if row >= t + visibleRows { t = row - visibleRows + 1 }
        }
        return max(0, min(t, rows - visibleRows))
    }

    /// The cells of chart `index` when the grid shows rows from `top`, or nil when it is off screen. Columns and
    /// rows share the area's spare cells from the left and the top.
    public func rect(of index: Int, top: Int) -> Rect? {
        let row = index / columns - top, column = index % columns
        guard index >= 0, index < count, row >= 0, row < visibleRows else { return nil }
        func span(_ total: Int, _ parts: Int, _ i: Int) -> (start: Int, length: Int) {
            let base = total / parts, extra = total % parts
            return (i * base + min(i, extra), base + (i < extra ? 1 : 0))
        }
        let x = span(area.width, columns, column), y = span(area.height, visibleRows, row)
        return Rect(x: area.x + x.start, y: area.y + y.start, width: x.length, height: y.length)
    }

    /// The chart under a cell, or nil.
    public func index(at p: Position, top: Int) -> Int? {
        for row in 0..<visibleRows {
            for column in 0..<columns {
                let i = (top + row) * columns + column
                if let r = rect(of: i, top: top), r.contains(p) { return i }
            }
        }
        return nil
    }
}

/// The grid: each chart in a frame titled with its name (a `group/` prefix dimmed) and its value, the selected one
/// highlighted, a pinned one marked `◆`.
public struct MetricsGrid {
    public var charts: [MetricsGridChart]
    /// The steps across every chart's x axis.
    public var steps: ClosedRange<Int>
    /// Marks drawn on every chart (the chart cursor).
    public var markers: [ChartMarker]
    public var selected: Int?
    /// The first row of charts shown.
    public var top: Int
    public var palette: Palette
    public var xLabel: (Int) -> String = Ticks.stepLabel

    public init(charts: [MetricsGridChart], steps: ClosedRange<Int>, markers: [ChartMarker] = [], selected: Int? = nil,
                top: Int = 0, palette: Palette) {
        self.charts = charts; self.steps = steps; self.markers = markers; self.selected = selected; self.top = top
        self.palette = palette
    }

    /// Draws the charts that are on screen; returns each one's plot (for the mouse: column x is step
    /// `StepColumns(first: steps.lowerBound, last: steps.upperBound, count: plot.width)`'s column x - plot.x).
    @discardableResult
    public func draw(into buffer: inout Buffer, area: Rect) -> [Int: Rect] {
        let layout = MetricsGridLayout(area: area, count: charts.count)
        var plots: [Int: Rect] = [:]
        for (i, chart) in charts.enumerated() {
            guard let rect = layout.rect(of: i, top: top) else { continue }
            let isSelected = selected == i
            let block = Block(title: nil, rightTitle: chart.valueText.isEmpty ? nil : chart.valueText, titleStyle: palette.title,
                              rightTitleStyle: palette.highlight, borderStyle: isSelected ? palette.highlight : palette.border)
            block.render(into: &buffer, area: rect)
            renderTitle(chart, selected: isSelected, into: &buffer, area: rect)
            let inner = block.inner(rect)
            guard !inner.isEmpty else { continue }
            var line = LineChart(series: chart.series, markers: markers, steps: steps, scale: chart.scale,
                                 axisStyle: palette.border, labelStyle: palette.axis, emptyText: "no values here")
            line.xLabel = xLabel
            if let plot = line.draw(into: &buffer, area: inner) { plots[i] = plot }
        }
        return plots
    }

    /// " ◆ val/acc (log) ": the group prefix dimmed, the rest in the title style; room is left for the value. A name
    /// read from a file may hold control characters: the buffer writes them as spaces, never to the terminal.
    func renderTitle(_ chart: MetricsGridChart, selected: Bool, into buffer: inout Buffer, area: Rect) {
        let valueWidth = chart.valueText.isEmpty ? 0 : chart.valueText.cellWidth + 3
        let room = area.width - 4 - valueWidth
        guard room >= 4 else { return }
        var spans: [Span] = [Span(" ")]
        if chart.pinned { spans.append(Span("◆ ", palette.marker)) }
        let name = chart.name
        if let slash = name.lastIndex(of: "/") {
            spans.append(Span(String(name[...slash]), palette.inactive))
            spans.append(Span(String(name[name.index(after: slash)...]), selected ? palette.highlight.bold : palette.title))
        } else {
            spans.append(Span(name, selected ? palette.highlight.bold : palette.title))
        }
        if chart.scale == .log { spans.append(Span(" (log)", palette.inactive)) }
        spans.append(Span(" "))
        TextLine(spans).truncated(toWidth: room).render(into: &buffer, at: Position(x: area.x + 2, y: area.y),
                                                       clip: Rect(x: area.x + 2, y: area.y, width: room, height: 1))
    }

    /// The group of a name: what comes before its first `/` (`train/acc` → `train`), or "" when it has none.
    public static func group(of name: String) -> String {
        name.firstIndex(of: "/").map { String(name[..<$0]) } ?? ""
    }
}
