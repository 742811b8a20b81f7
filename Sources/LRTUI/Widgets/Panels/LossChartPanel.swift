import LRLog

/// The loss panel: the steered run's raw loss and its smoothed curve, validation points, overlaid runs at the
/// same smoothing and rolled-back ghosts, in a frame whose title shows the loss at the view step, or every series
/// at the chart cursor. A metric pinned from the metrics grid (`m`, enter) is drawn under the loss, or in its place
/// when the panel is too small for two.
public struct LossChartPanel {
    /// The runs drawn: the first is the one steered, the others are overlaid in their own colours.
    public var runs: [RunModel]
    /// Index into `RunModel.smoothingWeights` (0: the raw loss only).
    public var smoothingIndex: Int
    /// The step the title's figures are at (the last step live, a replay's cursor).
    public var viewStep: Int?
    public var scale: AxisScale
    public var window: ChartWindow
    /// The metric pinned from the metrics grid, as the grid draws it (its runs' lines, its value, its scale).
    public var pinned: MetricsGridChart?
    public var palette: Palette

    /// Below this many rows a pinned metric takes the whole panel.
    static let rowsForTwoCharts = 14

    public init(runs: [RunModel], smoothingIndex: Int = 1, viewStep: Int? = nil, scale: AxisScale = .linear,
                window: ChartWindow, pinned: MetricsGridChart? = nil, palette: Palette) {
        self.runs = runs; self.smoothingIndex = smoothingIndex; self.viewStep = viewStep; self.scale = scale
        self.window = window; self.pinned = pinned; self.palette = palette
    }

    /// Draws the panel; returns where the plot went (for clicks and the cursor's stride: the loss chart's, else the
    /// pinned metric's), nil when none fits.
    @discardableResult
    public func render(into buffer: inout Buffer, area: Rect) -> Rect? {
        guard let pinned else { return renderLoss(into: &buffer, area: area) }
        guard area.height >= Self.rowsForTwoCharts else { return renderPinned(pinned, into: &buffer, area: area) }
        let parts = area.split(.vertical, [.fill(1), .percentage(45)])
        let plot = renderLoss(into: &buffer, area: parts[0])
        renderPinned(pinned, into: &buffer, area: parts[1])
        return plot
    }

    /// The pinned metric's chart: `◆ name`, its value (at the cursor when there is one), the same steps, events
    /// and cursor as the loss.
    @discardableResult
    func renderPinned(_ chart: MetricsGridChart, into buffer: inout Buffer, area: Rect) -> Rect? {
        var right = chart.valueText
        if let c = window.visibleCursor { right = "@" + window.xAxis.text(c) + " " + right }
        let block = Block(title: "◆ " + chart.name + (chart.scale == .log ? " (log)" : ""), rightTitle: right + " · m: grid",
                          titleStyle: palette.title, rightTitleStyle: palette.highlight, borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        let markers = runs.first.map { window.markers($0.events, palette: palette) } ?? []
        return window.chart(series: chart.series, markers: markers, scale: chart.scale, legend: [], palette: palette)
            .draw(into: &buffer, area: block.inner(area))
    }

    func renderLoss(into buffer: inout Buffer, area: Rect) -> Rect? {
        guard let primary = runs.first else { return nil }
        let w = RunModel.smoothingWeights[smoothingIndex]
        var right: [String] = []
        if w > 0 { right.append("smooth " + Format.trimZeros(Format.fixed(w, 2))) }
        if let v = primary.value(of: primary.smoothed[smoothingIndex], at: viewStep) ?? primary.value(of: primary.loss, at: viewStep) {
            right.append(Format.metric(v))
        }
        if let e = primary.eval(atOrBefore: viewStep) {
            right.append("val " + Format.metric(e.loss) + " acc " + Format.percent(e.accuracy))
        }
        if let c = window.visibleCursor {
            right = ["@" + window.xAxis.text(c)]
            right.append("loss " + (primary.loss.value(at: c).map(Format.metric) ?? "--"))
            if w > 0 { right.append("smooth " + (primary.smoothed[smoothingIndex].value(at: c).map(Format.metric) ?? "--")) }
            if let e = primary.evalLoss.points(in: Int.min...c).last {
                right.append("val " + Format.metric(e.value) + " @" + window.xAxis.text(e.step))
            }
            for run in runs.dropFirst() {
                let t = w > 0 ? run.smoothed[smoothingIndex] : run.loss
                right.append(run.name + " " + (t.value(at: c).map(Format.metric) ?? "--"))
            }
        }
        let block = Block(title: "loss" + (scale == .log ? " (log)" : ""), rightTitle: right.joined(separator: " · "),
                          titleStyle: palette.title, rightTitleStyle: palette.smooth,
                          borderStyle: window.focused ? palette.highlight : palette.border)
        block.render(into: &buffer, area: area)
        let limit = window.dataLimit
        var series: [ChartSeries] = []
        for ghost in primary.loss.ghostSources { series.append(ChartSeries(name: "ghost", source: ghost, style: palette.inactive.dim)) }
        for (i, run) in runs.enumerated().dropFirst() {
            let track = w > 0 ? run.smoothed[smoothingIndex] : run.loss
            series.append(ChartSeries(name: run.name, source: track, style: palette.run(i), steps: limit))
        }
        series.append(ChartSeries(name: "loss", source: primary.loss, style: w > 0 ? palette.loss : palette.smooth, steps: limit))
        if w > 0 {
            series.append(ChartSeries(name: "smoothed", source: primary.smoothed[smoothingIndex], style: palette.smooth, steps: limit))
        }
        let evalRange = limit.map { $0.clamped(to: window.steps) } ?? window.steps
        let points = primary.evalLoss.points(in: evalRange).map {
            ChartPoint(step: $0.step, value: $0.value, style: palette.valPoint)
        }
        var legend: [(String, Style)] = []
        if runs.count > 1 {
            legend = runs.enumerated().map { i, r in (r.name, i == 0 ? palette.smooth : palette.run(i)) }
        } else if !primary.evalLoss.isEmpty {
            legend = [("train", palette.smooth), ("val ●", palette.valPoint)]
        }
        return window.chart(series: series, points: points, markers: window.markers(primary.events, palette: palette),
                            scale: scale, legend: legend, palette: palette).draw(into: &buffer, area: block.inner(area))
    }
}
