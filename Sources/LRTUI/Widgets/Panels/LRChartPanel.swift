import LRLog

/// The learning-rate panel: each param group's LR of the steered run, the planned schedule ahead of it, overlaid
/// runs and rolled-back ghosts, in a frame whose title shows the LR now, or every series at the chart cursor.
public struct LRChartPanel {
    /// The runs drawn: the first is the one steered, the others are overlaid in their own colours.
    public var runs: [RunModel]
    /// The schedule ahead, drawn dimmed (live only).
    public var planned: LiveStatus.Planned?
    /// The title's LR when there is no cursor: the first group's, and whether it is held.
    public var current: (lr: Double, held: Bool)?
    public var scale: AxisScale
    /// The group the LR keys act on: drawn bold.
    public var selectedGroup: Int?
    public var window: ChartWindow
    public var palette: Palette

    public init(runs: [RunModel], planned: LiveStatus.Planned? = nil, current: (lr: Double, held: Bool)? = nil,
                scale: AxisScale = .log, selectedGroup: Int? = nil, window: ChartWindow, palette: Palette) {
        self.runs = runs; self.planned = planned; self.current = current; self.scale = scale
        self.selectedGroup = selectedGroup; self.window = window; self.palette = palette
    }

    /// Draws the panel; returns where the plot went (for clicks and the cursor's stride), nil when none fits.
    @discardableResult
    public func render(into buffer: inout Buffer, area: Rect) -> Rect? {
        guard let primary = runs.first else { return nil }
        let names = primary.groupNames
        var title = "learning rate"
        if scale == .log { title += " (log)" }
        var rightTitle = current.map { Format.lr($0.lr) + ($0.held ? " held" : "") } ?? ""
        if let c = window.visibleCursor {
            var values: [String] = []
            for (g, t) in primary.lr.enumerated() {
                let v = t.value(at: c).map(Format.lr) ?? "--"
                values.append(primary.lr.count > 1 ? (names.indices.contains(g) ? names[g] : "g\(g + 1)") + " " + v : v)
            }
            for run in runs.dropFirst() { values.append(run.name + " " + (run.lr.first?.value(at: c).map(Format.lr) ?? "--")) }
            rightTitle = "@" + window.xAxis.text(c) + " " + values.joined(separator: " · ")
        }
        let block = Block(title: title, rightTitle: rightTitle, titleStyle: palette.title, rightTitleStyle: palette.highlight,
                          borderStyle: window.focused ? palette.highlight : palette.border)
        block.render(into: &buffer, area: area)
        var series: [ChartSeries] = []
        let limit = window.dataLimit
        // Ghost branches (rolled back), then overlaid runs, then the planned schedule, then the primary run on top.
        for track in primary.lr {
            for ghost in track.ghostSources { series.append(ChartSeries(name: "ghost", source: ghost, style: palette.inactive.dim)) }
        }
        for (i, run) in runs.enumerated().dropFirst() {
            for (g, track) in run.lr.enumerated() {
                series.append(ChartSeries(name: "\(run.name) \(g)", source: track, style: palette.run(i), steps: limit))
            }
        }
        if let p = planned {
            for lrs in p.lrs where !lrs.isEmpty {
                series.append(ChartSeries(name: "planned", source: PointSeries(start: p.fromStep, values: lrs),
                                          style: palette.planned))
            }
        }
        for (g, track) in primary.lr.enumerated() {
            var style = palette.group(g)
            if selectedGroup == g { style = style.bold }
            series.append(ChartSeries(name: names.indices.contains(g) ? names[g] : "g\(g + 1)", source: track,
                                      style: style, steps: limit))
        }
        var legend: [(String, Style)] = []
        if runs.count > 1 {
            legend = runs.enumerated().map { i, r in (r.name, i == 0 ? palette.group(0) : palette.run(i)) }
        } else if names.count > 1 {
            legend = names.enumerated().map { g, n in (n, palette.group(g)) }
        }
        return window.chart(series: series, markers: window.markers(primary.events, palette: palette), scale: scale,
                            legend: legend, palette: palette).draw(into: &buffer, area: block.inner(area))
    }
}
