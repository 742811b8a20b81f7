import Foundation
import Testing
import LRLog
import LRTUI

/// Twenty metrics in four groups, as a bridged run logs them, plus an eval metric and a metrics record.
let gridMetricNames: [String] = (0..<20).map { (k: Int) -> String in
    let group: String = ["train", "val", "grad", "system"][k % 4]
    return group + "/m" + (k < 10 ? "0\(k)" : "\(k)")
}

/// Steps 1...n with every metric of `gridMetricNames` (metric k is k + a wave), an eval with `val/f1` every 100
/// steps, a metrics record with `tokens` every 50.
func metricRecords(steps n: Int, offset: Double = 0) -> [RunRecord] {
    var out: [RunRecord] = [.header(RunHeader(lrtopVersion: "0.1", config: ["name": "grid"], seed: 1,
                                              startTime: "2025-01-01T00:00:00Z", groups: ["all"], stepsPerEpoch: 100,
                                              totalSteps: n))]
    for s in 1...n {
        var metrics: [MetricValue] = []
        for (k, name) in gridMetricNames.enumerated() {
            let wave: Double = sin(Double(s) / 20 + Double(k))
            metrics.append(MetricValue(name, Double(k) + offset + wave))
        }
        out.append(.step(StepRecord(step: s, epoch: (s - 1) / 100, lrs: [1e-3], loss: 2 / Double(s).squareRoot(),
                                    gradNorm: 1, samplesPerSec: 1000, wallTime: Double(s) * 0.01, metrics: metrics)))
        if s % 100 == 0 {
            out.append(.eval(EvalRecord(step: s, epoch: (s - 1) / 100, loss: 0.5, accuracy: 0.8, wallTime: Double(s) * 0.01,
                                        metrics: [MetricValue("val/f1", Double(s) / 1000)])))
        }
        if s % 50 == 0 {
            out.append(.metrics(MetricsRecord(step: s, wallTime: Double(s) * 0.01, metrics: [MetricValue("tokens", Double(s) * 100)])))
        }
    }
    return out
}

/// The records as a run read from a log.
func metricRun(_ name: String, steps n: Int, offset: Double = 0) -> RunData {
    var run = RunData(name: name, source: "/runs/\(name).jsonl", format: .runLog)
    for r in metricRecords(steps: n, offset: offset) { run.append(r) }
    return run
}

@Suite struct MetricsGridTests {
    let palette = Palette(theme: .builtinDefault, depth: .truecolor)

    @Test func theLayoutFitsEveryChartWhenItCanAndScrollsWhenItCannot() {
        let big = MetricsGridLayout(area: Rect(x: 0, y: 2, width: 200, height: 57), count: 26)
        #expect(big.fitsAll)
        var cells: [Rect] = []
        for i in 0..<26 {
            let r = try! #require(big.rect(of: i, top: 0))
            #expect(r.width >= MetricsGridLayout.minimumChart.width && r.height >= MetricsGridLayout.minimumChart.height)
            #expect(r.x >= 0 && r.right <= 200 && r.y >= 2 && r.bottom <= 59)
            #expect(!cells.contains { $0.intersection(r).area > 0 })
            cells.append(r)
        }
        // A chart wider than tall on screen (cells are about twice as tall as wide), and the area used in full.
        let used: Int = cells.reduce(0) { $0 + $1.area }
        #expect(used > 200 * 57 * 3 / 4)
        #expect(cells[0].width > 2 * cells[0].height)

        let small = MetricsGridLayout(area: Rect(x: 0, y: 0, width: 80, height: 22), count: 26)
        #expect(!small.fitsAll && small.columns == 3 && small.visibleRows == 3)
        #expect(small.rect(of: 8, top: 0) != nil && small.rect(of: 9, top: 0) == nil)
        #expect(small.scroll(0, keeping: 5) == 3)  // row 5 at the bottom
        #expect(small.scroll(3, keeping: 1) == 1)
        #expect(small.scroll(99, keeping: nil) == small.rows - small.visibleRows)
        #expect(small.index(at: Position(x: 30, y: 8), top: 1) == 7)  // row 2 of the grid, column 1
    }

    @Test func theGridDrawsEachChartWithItsNameValueAndMarks() {
        var series: [MetricsGridChart] = []
        for (i, name) in ["train/acc", "val/f1", "tokens", "gpu_mem_peak"].enumerated() {
            var s = EnvelopeSeries()
            for step in 1...200 { s.append(step: step, value: Double(i + 1) * Double(step)) }
            series.append(MetricsGridChart(name: name, series: [ChartSeries(name: name, source: s, style: palette.smooth)],
                                           valueText: "v\(i)", scale: i == 1 ? .log : .linear, pinned: i == 2))
        }
        var b = Buffer(width: 100, height: 20)
        let grid = MetricsGrid(charts: series, steps: 0...200, markers: [ChartMarker(step: 100, style: palette.highlight, symbol: "┃")],
                               selected: 3, palette: palette)
        let plots = grid.draw(into: &b, area: b.area)
        let text = b.text
        for name in ["train/acc", "val/f1 (log)", "◆ tokens", "gpu_mem_peak", "v0", "v1", "v2", "v3"] {
            #expect(text.contains(name), "no '\(name)' in\n\(text)")
        }
        #expect(plots.count == 4)
        #expect(text.filter { $0 == "┃" }.count == 4)  // the cursor on every chart
        // The selected chart's frame is highlighted; the group prefix of a name is dimmed.
        let selected = try! #require(MetricsGridLayout(area: b.area, count: 4).rect(of: 3, top: 0))
        #expect(b[selected.x, selected.y].fg == palette.highlight.fg)
        let row0 = Array(b.lines()[0])
        let slash = row0.firstIndex(of: "/")!
        #expect(b[slash, 0].fg == palette.inactive.fg && b[slash + 1, 0].fg == palette.title.fg)
        // A name from a file never writes control characters: the cell buffer shows them as spaces.
        var hostile = Buffer(width: 60, height: 10)
        MetricsGrid(charts: [MetricsGridChart(name: "a\u{1b}[2J\u{7f}\u{9b}b", series: [], valueText: "1")], steps: 0...10,
                    palette: palette).draw(into: &hostile, area: hostile.area)
        #expect(hostile.text.contains("a [2Jb"))
        #expect(!hostile.text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7f..<0xa0).contains($0.value) })
        #expect(MetricsGrid.group(of: "train/acc") == "train" && MetricsGrid.group(of: "tokens") == "")
    }
}

@Suite struct MetricsViewTests {
    func dashboard(steps: Int = 300, live: Bool = true) -> (Dashboard, FakeSource) {
        let src = FakeSource(isLive: live)
        src.pending = metricRecords(steps: steps)
        src.current = FakeSource.status(at: steps)
        src.current.groups = [LiveStatus.Group(name: "all", lr: 1e-3)]
        let d = Dashboard(source: src)
        d.update()
        return (d, src)
    }

    @Test func mShowsEveryMetricByNameGroupedByPrefix() {
        let (d, _) = dashboard()
        #expect(d.handle(.char("m")) == .none)
        #expect(d.metricsView.isOpen)
        let screen = d.render(width: 200, height: 60)
        let text = screen.text
        for name in gridMetricNames + ["train/loss", "train/lr", "val/loss", "val/acc", "val/f1", "tokens"] {
            #expect(text.contains(name), "no '\(name)' on the grid")
        }
        #expect(screen.squeezed.contains("metrics 28 · train 9 · val 8 · grad 5 · system 5 · other 1"))
        // Grouped: every train chart before the first val chart, in order of first appearance.
        let names = d.metricsGridNames
        #expect(Array(names.prefix(4)) == ["train/loss", "train/lr", "train/grad_norm", "train/samples_per_sec"])
        #expect(names.lastIndex { $0.hasPrefix("train/") }! < names.firstIndex { $0.hasPrefix("val/") }!)
        #expect(names.last == "tokens")
        // The key bar shows the grid's keys; m goes back.
        #expect(screen.lines()[59].contains("filter") && screen.lines()[59].contains("pin"))
        _ = d.handle(.char("m"))
        #expect(!d.metricsView.isOpen && d.render(width: 120, height: 40).text.contains("learning rate"))
    }

    @Test func slashFiltersByName() {
        let (d, _) = dashboard()
        _ = d.handle(.char("m"))
        _ = d.handle(.char("/"))
        for c in "val m1" { _ = d.handle(.char(c)) }
        // It filters while it is typed: every word must be in the name.
        #expect(d.metricsGridNames == ["val/m13", "val/m17"])
        _ = d.handle(.enter)
        let text = d.render(width: 160, height: 48).squeezed
        #expect(text.contains("metrics 2 of 28") && text.contains("filter: val m1"))
        #expect(text.contains("val/m13") && !text.contains("train/m00"))
        _ = d.handle(.escape)  // clears the filter
        #expect(d.metricsGridNames.count == 28)
        _ = d.handle(.char("/"))
        for c in "nothing" { _ = d.handle(.char(c)) }
        _ = d.handle(.enter)
        #expect(d.render(width: 120, height: 40).text.contains("no metric's name contains 'nothing'"))
    }

    @Test func enterPinsTheSelectedMetricToTheLossPanel() {
        let (d, _) = dashboard()
        _ = d.handle(.char("m"))
        _ = d.render(width: 160, height: 48)
        _ = d.handle(.right)  // selects the first chart
        _ = d.handle(.right)  // the second
        _ = d.handle(.down)   // a row below
        let columns = MetricsGridLayout(area: Rect(x: 0, y: 2, width: 160, height: 45), count: 28).columns
        let name = d.metricsGridNames[1 + columns]
        #expect(d.metricsView.selected == name)
        _ = d.handle(.enter)
        #expect(d.metricsView.pinned == name)
        _ = d.handle(.char("l"))
        #expect(d.metricsView.logScale == [name])
        _ = d.handle(.char("m"))
        let main = d.render(width: 120, height: 40).text
        #expect(main.contains("◆ \(name) (log)"))
        #expect(main.contains("loss"))  // the loss chart stays above it
        // Unpinned, the loss panel is the loss chart alone.
        _ = d.handle(.char("m"))
        _ = d.handle(.enter)
        _ = d.handle(.char("m"))
        #expect(!d.render(width: 120, height: 40).text.contains("◆"))
    }

    @Test func theCursorShowsEveryMetricsValueAtItsStep() {
        let (d, _) = dashboard()
        _ = d.handle(.char("m"))
        _ = d.render(width: 200, height: 60)
        _ = d.handle(.tab)
        #expect(d.chartCursor == 300)
        for _ in 0..<20 { _ = d.handle(.left) }
        let c = try! #require(d.chartCursor)
        #expect(c < 300)
        let screen = d.render(width: 200, height: 60).text
        #expect(screen.contains("@" + Format.grouped(c)))
        // Each chart's title holds its value at the cursor (the last logged at or before it).
        let m07 = 7 + sin(Double(c) / 20 + 7)
        #expect(screen.contains("m07") && screen.contains(Format.metric(m07)))
        let tokens = Double(c / 50 * 50) * 100
        #expect(screen.contains(Format.metric(tokens)))
        _ = d.handle(.escape)  // the cursor goes first
        #expect(d.chartCursor == nil && d.metricsView.isOpen)
        _ = d.handle(.escape)
        #expect(!d.metricsView.isOpen)
    }

    @Test func aClickSelectsAChartAndPutsTheCursorThere() {
        let (d, _) = dashboard()
        _ = d.handle(.char("m"))
        _ = d.render(width: 160, height: 48)
        let layout = MetricsGridLayout(area: Rect(x: 0, y: 2, width: 160, height: 45), count: 28)
        let r = try! #require(layout.rect(of: 5, top: 0))
        _ = d.handle(.mouse(MouseEvent(.click, x: r.x + r.width / 2, y: r.y + 2)))
        #expect(d.metricsView.selected == d.metricsGridNames[5])
        #expect(d.chartCursor != nil)
    }

    @Test func overlaidRunsDrawEachRunsMetricInItsColour() {
        let runs = [metricRun("a", steps: 300), metricRun("b", steps: 200, offset: 5)]
        let d = ReplaySource(runs: runs).makeDashboard()
        d.update()
        _ = d.handle(.char("m"))
        let screen = d.render(width: 200, height: 60)
        #expect(screen.squeezed.contains("━ a ━ b"))
        // Both runs' lines in every chart: the first run's in the primary colour, the overlay's in its own.
        let layout = MetricsGridLayout(area: Rect(x: 0, y: 2, width: 200, height: 57), count: d.metricsGridNames.count)
        let chart = try! #require(layout.rect(of: d.metricsGridNames.firstIndex(of: "val/m01")!, top: 0))
        var colours = Set<Color>()
        for y in chart.y + 1..<chart.bottom - 2 {
            for x in chart.x + 4..<chart.right - 1 where screen[x, y].symbol.unicodeScalars.first!.value >= 0x2801 {
                colours.insert(screen[x, y].fg)
            }
        }
        #expect(colours.contains(d.palette.smooth.fg!) && colours.contains(d.palette.run(1).fg!))
    }

    @Test func aReplayBuiltInBulkHoldsWhatLiveRecordsGive() {
        let live = RunModel(source: nil)
        live.ingest(metricRecords(steps: 400))
        let bulk = RunModel(source: nil)
        bulk.ingest(run: metricRun("r", steps: 400))
        // The same series (built-ins first; the step metrics in order; the point metrics after them either way).
        #expect(Array(live.namedSeries.map(\.name).prefix(26)) == Array(bulk.namedSeries.map(\.name).prefix(26)))
        #expect(Set(live.namedSeries.map(\.name)) == Set(bulk.namedSeries.map(\.name)))
        // The same values, a replay's step metrics at Float32 precision (its columns'; live records keep Doubles).
        func same(_ a: Double?, _ b: Double?) -> Bool { a.map { Float($0) } == b.map { Float($0) } }
        for (name, source) in live.namedSeries {
            let a = live.chartSource(source)!, b = bulk.chartSource(source)!
            for r in [1...400, 37...211, 300...300, 250...400] {
                let x = a.summary(in: r), y = b.summary(in: r)
                #expect(same(x?.min, y?.min) && same(x?.max, y?.max) && x?.count == y?.count && same(x?.last, y?.last), "\(name) \(r)")
            }
            #expect(same(live.value(source, atOrBefore: 333), bulk.value(source, atOrBefore: 333)), "\(name)")
        }
    }

    @Test func theStatusPanelShowsGPUMemoryUtilisationAndRankStepTimes() {
        let src = FakeSource(isLive: true)
        src.current = FakeSource.status(at: 2)
        src.pending = [.header(RunHeader(lrtopVersion: "py", config: [:], seed: 0, startTime: "2025-01-01T00:00:00Z",
                                         groups: ["all"], stepsPerEpoch: 10, totalSteps: 100))]
        for s in 1...2 {
            src.pending.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: 10, wallTime: Double(s),
                                                metrics: [MetricValue(SystemMetrics.gpuMemPeak, 31.4e9), MetricValue(SystemMetrics.gpuMemTotal, 80e9),
                                                          MetricValue(SystemMetrics.gpuMemReserved, 36e9), MetricValue(SystemMetrics.gpuUtil, 87.4),
                                                          MetricValue("step_time/rank0", 0.210), MetricValue("step_time/rank1", 0.262)])))
        }
        let d = Dashboard(source: src)
        d.update()
        let text = d.render(width: 160, height: 48).squeezed
        #expect(text.contains("gpu 31.4/80.0 GB peak · 36.0 rsv · 87%"), "\(text)")
        #expect(text.contains("ranks 210–262 ms/step · slowest 1"))
    }
}
