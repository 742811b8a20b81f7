import LRLog

// The metrics grid's part of the dashboard (`m`): which charts it holds, its keys and mouse, drawing the screen around
// it, and the chart of the metric pinned to the loss panel. The grid itself is Widgets/MetricsGrid.swift; the loss
// panel draws the pinned chart (Widgets/Panels/LossChartPanel.swift), the status panel the GPU rows
// (Widgets/Panels/StatusPanel.swift).

/// The metrics grid's state.
public struct MetricsView: Equatable, Sendable {
    public var isOpen = false
    /// Words a chart's name must all contain (any case); empty: every chart.
    public var filter = ""
    /// The filter while it is typed (`/`); nil when its prompt is closed.
    public var filterPrompt: PromptState?
    /// The selected chart, by name (names keep their place while new metrics arrive).
    public var selected: String?
    /// The first row of charts on screen.
    public var top = 0
    /// Charts drawn on a log y axis.
    public var logScale: Set<String> = []
    /// The metric drawn in the main view's loss panel too.
    public var pinned: String?

    public init() {}

    /// Whether `name` passes the filter.
    public func matches(_ name: String) -> Bool {
        let words = filter.lowercased().split(separator: " ")
        guard !words.isEmpty else { return true }
        let lower = name.lowercased()
        return words.allSatisfy { lower.contains($0) }
    }
}

extension Dashboard {
    // MARK: the charts

    /// Every series of every run by name (the primary run's first), grouped by prefix in order of each group's
    /// first appearance (`train/…`, `val/…`), before the filter.
    var allMetricNames: [String] {
        var names: [String] = []
        var seen = Set<String>()
        for run in runs { for n in run.namedSeries.map(\.name) where seen.insert(n).inserted { names.append(n) } }
        var groups: [String] = []
        var byGroup: [String: [String]] = [:]
        for n in names {
            let g = MetricsGrid.group(of: n)
            if byGroup[g] == nil { groups.append(g) }
            byGroup[g, default: []].append(n)
        }
        return groups.flatMap { byGroup[$0]! }
    }

    /// The grid's charts in order, filtered.
    public var metricsGridNames: [String] { allMetricNames.filter(metricsView.matches) }

    /// The step whose values the charts' titles show: the cursor when it is on the charts, else the view step.
    var metricsValueStep: Int? {
        if let c = chartCursor, visibleSteps.contains(c) { return c }
        return viewStep
    }

    /// The chart of metric `name`: a line per run that has it (overlays in their colours, the primary's on top,
    /// with its rolled-back branches dimmed), its value at `metricsValueStep`.
    func metricsChart(_ name: String, sources: [[String: MetricSource]]) -> MetricsGridChart {
        var series: [ChartSeries] = []
        let limit = dataLimit
        for (i, run) in runs.enumerated().dropFirst() {
            guard let s = sources[i][name], let c = run.chartSource(s) else { continue }
            series.append(ChartSeries(name: run.name, source: c, style: palette.run(i), steps: limit))
        }
        var value = ""
        if let s = sources[0][name], let c = primary.chartSource(s) {
            if let track = c as? MetricTrack {
                for ghost in track.ghostSources { series.insert(ChartSeries(name: "ghost", source: ghost, style: palette.inactive.dim), at: 0) }
            }
            series.append(ChartSeries(name: primary.name, source: c, style: palette.smooth, steps: limit))
            if let step = metricsValueStep, let v = primary.value(s, atOrBefore: step) { value = Format.metric(v) }
        }
        return MetricsGridChart(name: name, series: series, valueText: value,
                                scale: metricsView.logScale.contains(name) ? .log : .linear, pinned: metricsView.pinned == name)
    }

    /// Each run's series by name.
    var metricSources: [[String: MetricSource]] {
        runs.map { run in Dictionary(run.namedSeries.map { ($0.name, $0.source) }, uniquingKeysWith: { a, _ in a }) }
    }

    // MARK: keys and mouse

    /// `m` and `/` from the key table.
    func performMetrics(_ action: KeyAction) {
        switch action {
        case .metricsView:
            metricsView.isOpen.toggle()
            if metricsView.isOpen {
                if focus != nil { setFocus(nil) }
                showNotice("metrics: ↑↓←→ select · l log-y · enter pin · tab cursor · / filter · m back")
            } else {
                chartCursor = nil
                metricsView.filterPrompt = nil
            }
        case .filterMetrics:
            metricsView.isOpen = true
            metricsView.filterPrompt = PromptState(text: metricsView.filter, hint: "words a metric's name contains · esc clears")
        case .metricsGrid(let a):
            performGrid(a)
        default:
            break
        }
    }

    /// Keys while the grid is open: the filter's prompt takes them all; then the grid's own keys; the rest go on to
    /// the key table (false).
    func handleMetricsKey(_ key: Key) -> Bool {
        guard metricsView.isOpen else { return false }
        if var prompt = metricsView.filterPrompt {
            switch prompt.handle(key) {
            case .none:
                metricsView.filterPrompt = prompt
                metricsView.filter = prompt.text
            case .cancel:
                metricsView.filterPrompt = nil
                metricsView.filter = ""
            case .submit(let text):
                metricsView.filterPrompt = nil
                metricsView.filter = text
            }
            metricsView.top = 0
            keepSelectionVisible()
            return true
        }
        // With the cursor on, ← → move it (by a column of the widest chart), home/end to the ends.
        if let cursor = chartCursor, [.left, .right, .home, .end].contains(key) {
            let steps = visibleSteps
            let width = max(1, lastGridLayout.map { $0.area.width / $0.columns } ?? 60)
            let stride = max(1, (steps.upperBound - steps.lowerBound + 1) / (2 * width))
            switch key {
            case .left: chartCursor = max(steps.lowerBound, cursor - stride)
            case .right: chartCursor = min(steps.upperBound, cursor + stride)
            case .home: chartCursor = steps.lowerBound
            default: chartCursor = viewStep ?? steps.upperBound
            }
            return true
        }
        guard let binding = KeyMap.metricsGrid.first(where: { $0.keys.contains(key) }) else { return false }
        _ = perform(binding.action)
        return true
    }

    func performGrid(_ action: MetricsGridAction) {
        let names = metricsGridNames
        switch action {
        case .select(let dc, let dr):
            guard !names.isEmpty else { return }
            let columns = lastGridLayout?.columns ?? 1
            let current = metricsView.selected.flatMap { names.firstIndex(of: $0) }
            var i = current ?? 0
            if current != nil { i = min(names.count - 1, max(0, i + dc + dr * columns)) }
            metricsView.selected = names[i]
            keepSelectionVisible()
        case .toggleCursor:
            if chartCursor == nil {
                chartCursor = viewStep ?? visibleSteps.upperBound
                showNotice("cursor: ← → move it, every chart shows its value there · tab hides it")
            } else {
                chartCursor = nil
            }
        case .toggleScale:
            guard let name = selectedMetric(names) else { showNotice("no chart selected: ↑↓←→ select one", .warning); return }
            if metricsView.logScale.remove(name) == nil { metricsView.logScale.insert(name) }
        case .pin:
            guard let name = selectedMetric(names) else { showNotice("no chart selected: ↑↓←→ select one", .warning); return }
            if metricsView.pinned == name {
                metricsView.pinned = nil
                showNotice("unpinned " + name)
            } else {
                metricsView.pinned = name
                showNotice("pinned " + name + " to the loss panel (m: back to it)")
            }
        case .back:
            if chartCursor != nil {
                chartCursor = nil
            } else if !metricsView.filter.isEmpty {
                metricsView.filter = ""
                metricsView.top = 0
            } else {
                _ = perform(.metricsView)
            }
        }
    }

    /// The selected chart's name, or the first chart's when none is selected yet.
    func selectedMetric(_ names: [String]) -> String? {
        if let s = metricsView.selected, names.contains(s) { return s }
        metricsView.selected = names.first
        return names.first
    }

    func keepSelectionVisible() {
        let names = metricsGridNames
        guard let layout = lastGridLayout else { return }
        let layoutNow = MetricsGridLayout(area: layout.area, count: names.count)
        let row = metricsView.selected.flatMap { names.firstIndex(of: $0) }.map { $0 / layoutNow.columns }
        metricsView.top = layoutNow.scroll(metricsView.top, keeping: row)
    }

    /// A click selects the chart under it and, on its plot, puts the cursor at that step; the wheel scrolls rows.
    func handleMetricsMouse(_ m: MouseEvent) -> ScreenAction {
        guard let layout = lastGridLayout else { return .none }
        let names = metricsGridNames
        let at = Position(x: m.x, y: m.y)
        switch m.kind {
        case .wheelUp, .wheelDown:
            metricsView.top = layout.scroll(metricsView.top + (m.kind == .wheelUp ? -1 : 1), keeping: nil)
        case .click:
            guard let i = layout.index(at: at, top: metricsView.top), names.indices.contains(i) else { return .none }
            metricsView.selected = names[i]
            if let plot = lastGridPlots[i], plot.contains(at) {
                let steps = visibleSteps
                let cols = StepColumns(first: steps.lowerBound, last: steps.upperBound, count: plot.width)
                chartCursor = cols.steps(ofColumn: m.x - plot.x)?.lowerBound ?? chartCursor
            }
        }
        return .none
    }

    // MARK: drawing

    /// The grid screen: the header, a bar naming what is shown, the grid, the key bar, overlays.
    func renderMetricsView(into buffer: inout Buffer, layout: DashboardLayout) {
        renderHeader(into: &buffer, area: layout.header)
        let body = Rect(x: layout.header.x, y: layout.header.bottom, width: layout.header.width,
                        height: layout.footer.y - layout.header.bottom)
        let bar = body.row(0)
        let gridArea = body.inset(top: 1)
        let names = metricsGridNames
        let all = allMetricNames
        let gridLayout = MetricsGridLayout(area: gridArea, count: names.count)
        lastGridLayout = gridLayout
        metricsView.top = gridLayout.scroll(metricsView.top, keeping: nil)
        renderMetricsBar(into: &buffer, area: bar, shown: names, all: all, layout: gridLayout)
        if names.isEmpty {
            lastGridPlots = [:]
            let text = all.isEmpty
                ? "no metrics yet: every number a run's records give is one (run.step(acc=…), TensorBoard tags, CSV columns)"
                : "no metric's name contains '\(metricsView.filter)' (esc clears the filter)"
            let lines = Format.wrap(text, width: max(10, gridArea.width - 4))
            for (k, line) in lines.enumerated() {
                buffer.set(string: line, at: Position(x: gridArea.x + 2, y: gridArea.y + 1 + k), style: palette.inactive, clip: gridArea)
            }
        } else {
            let sources = metricSources
            let steps = visibleSteps
            var visible: [MetricsGridChart] = []
            // Only the charts on screen are built; the others are placeholders the grid does not draw.
            for (i, name) in names.enumerated() {
                if gridLayout.rect(of: i, top: metricsView.top) != nil {
                    visible.append(metricsChart(name, sources: sources))
                } else {
                    visible.append(MetricsGridChart(name: name, series: []))
                }
            }
            var grid = MetricsGrid(charts: visible, steps: steps, markers: ChartWindow(steps: steps, cursor: chartCursor).markers([], palette: palette),
                                   selected: metricsView.selected.flatMap { names.firstIndex(of: $0) },
                                   top: metricsView.top, palette: palette)
            if xAxis != .steps { grid.xLabel = xAxis.label }
            lastGridPlots = grid.draw(into: &buffer, area: gridArea)
        }
        renderFooter(into: &buffer, area: layout.footer)
        if let prompt = metricsView.filterPrompt {
            PromptView(state: prompt, palette: palette, prefix: "/").render(into: &buffer, area: layout.footer)
        }
        renderOverlay(into: &buffer, area: buffer.area, layout: layout)
    }

    /// "metrics 12 of 20 · train 8 · val 4 · filter: acc · @1,234 · rows 1–3 of 5", and the runs' colours.
    func renderMetricsBar(into buffer: inout Buffer, area: Rect, shown: [String], all: [String], layout: MetricsGridLayout) {
        var left: [Span] = [Span(" metrics ", palette.title.bold)]
        left.append(Span(shown.count == all.count ? "\(all.count)" : "\(shown.count) of \(all.count)", palette.highlight))
        var counts: [(String, Int)] = []
        for n in shown {
            let g = MetricsGrid.group(of: n)
            if let k = counts.firstIndex(where: { $0.0 == g }) { counts[k].1 += 1 } else { counts.append((g, 1)) }
        }
        if counts.count > 1 || counts.first?.0.isEmpty == false {
            for (g, n) in counts { left.append(Span(" · " + (g.isEmpty ? "other" : g) + " \(n)", palette.inactive)) }
        }
        if !metricsView.filter.isEmpty { left.append(Span(" · filter: " + metricsView.filter, palette.warn)) }
        var right: [Span] = []
        if let c = chartCursor { right.append(Span("@" + xAxis.text(c) + " ", palette.highlight.bold)) }
        if !layout.fitsAll {
            let first = metricsView.top + 1, last = min(layout.rows, metricsView.top + layout.visibleRows)
            right.append(Span("rows \(first)–\(last) of \(layout.rows) ", palette.inactive))
        }
        if runs.count > 1 {
            for (i, r) in runs.enumerated() {
                right.append(Span("━ ", i == 0 ? palette.smooth : palette.run(i)))
                right.append(Span(r.name + " ", palette.axis))
            }
        }
        let rightLine = TextLine(right)
        let leftLine = TextLine(left).truncated(toWidth: max(0, area.width - min(rightLine.width, area.width / 2)))
        leftLine.render(into: &buffer, at: Position(x: area.x, y: area.y), clip: area)
        if leftLine.width + rightLine.width <= area.width {
            rightLine.render(into: &buffer, at: Position(x: area.right - rightLine.width, y: area.y), clip: area)
        }
    }

    /// The key bar's items in the grid: its own keys, then help and quit.
    func metricsKeyBarItems(width: Int) -> [(key: String, label: String)] {
        var items: [(key: String, label: String)] = KeyMap.metricsGrid.compactMap { b in
            b.barLabel.map { (b.keys[0] == .enter ? "⏎" : b.keys[0].description, $0) }
        }
        items.insert(("↑↓←→", "select"), at: 0)
        let tail: [(key: String, label: String)] = [("?", "help"), ("q", "quit")]
        func total(_ list: [(key: String, label: String)]) -> Int {
            list.reduce(0) { $0 + $1.key.cellWidth + 1 + $1.label.cellWidth + 2 } - 2
        }
        while total(items + tail) > width, !items.isEmpty { items.removeLast() }
        return items + tail
    }

    /// The pinned metric's chart for the loss panel (`LossChartPanel`), when a run has it.
    var pinnedChart: MetricsGridChart? {
        guard let name = metricsView.pinned, runs.contains(where: { $0.source(named: name) != nil }) else { return nil }
        return metricsChart(name, sources: metricSources)
    }
}
