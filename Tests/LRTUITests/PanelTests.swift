import Testing
import LRCommand
import LRLog
import LRTUI

/// The dashboard's panels as widgets (ratatui's `Chart`: data, axes and a frame): each renders from plain data into
/// a buffer, without a dashboard; `DashboardView` only lays them out.
@Suite struct PanelTests {
    static let palette = Palette(theme: .builtinDefault, depth: .none)

    /// 200 steps of two groups, evaluations at 100 and 200, `lr *2` at 150, a rejected `lr abc` at 160.
    static func run() -> RunModel {
        let run = RunModel(source: nil)
        run.ingest(FakeSource.records(steps: 200))
        return run
    }

    @Test func theLRPanelDrawsEachGroupWithItsLegendTheCommandsAndTheLRNow() {
        var b = Buffer(width: 60, height: 12)
        let plot = LRChartPanel(runs: [Self.run()], current: (8e-4, true), window: ChartWindow(steps: 0...250),
                                palette: Self.palette).render(into: &b, area: b.area)
        let lines = b.lines()
        #expect(lines[0] == "╭─ learning rate (log) ───────────────────── 8.00e-4 held ─╮")
        #expect(lines[1].hasSuffix("▾       ━ body ━ head │"))
        #expect(lines[10] == "│    └0────────50─────────100───────150────────200──────250│")
        #expect(plot == Rect(x: 6, y: 1, width: 53, height: 9))
        // The command's marker stands at step 150: 150 of 250 steps across the 53 columns.
        #expect(lines[1].firstIndex(of: "▾").map { lines[1].distance(from: lines[1].startIndex, to: $0) } == 6 + 31)
    }

    @Test func theLRPanelsTitleReadsEverySeriesAtTheCursorAndThePlanIsDrawnAhead() {
        let run = Self.run()
        var b = Buffer(width: 60, height: 12)
        let planned = LiveStatus.Planned(fromStep: 201, lrs: [[5e-4, 5e-4, 5e-4], [1e-3, 1e-3, 1e-3]])
        LRChartPanel(runs: [run], planned: planned, window: ChartWindow(steps: 0...250, cursor: 50, focused: true),
                     palette: Self.palette).render(into: &b, area: b.area)
        #expect(b.lines()[0] == "╭─ learning rate (log) ── @50 body 9.75e-4 · head 1.95e-3 ─╮")
        #expect(b.lines()[1].contains("┃"))  // the cursor
        var without = Buffer(width: 60, height: 12)
        LRChartPanel(runs: [run], window: ChartWindow(steps: 0...250, cursor: 50), palette: Self.palette)
            .render(into: &without, area: without.area)
        #expect(b.text != without.text)  // the plan's points after step 200
    }

    @Test func theLossPanelShowsTheSmoothedLossAndTheEvaluationAtTheViewStep() {
        let run = Self.run()
        var b = Buffer(width: 70, height: 12)
        LossChartPanel(runs: [run], viewStep: 200, window: ChartWindow(steps: 0...250), palette: Self.palette)
            .render(into: &b, area: b.area)
        #expect(b.lines()[0] == "╭─ loss ──────────────── smooth 0.6 · 0.1420 · val 0.4321 acc 87.5% ─╮")
        #expect(b.lines()[1].hasSuffix("━ train ━ val ● │"))
        #expect(b.lines()[8].filter { $0 == "●" }.count == 2)  // the evaluations at 100 and 200
        // At step 120 (a replay's cursor): the evaluation before it.
        var at = Buffer(width: 70, height: 12)
        LossChartPanel(runs: [run], smoothingIndex: 0, viewStep: 120,
                       window: ChartWindow(steps: 0...250, dataLimit: Int.min...120), palette: Self.palette)
            .render(into: &at, area: at.area)
        #expect(at.lines()[0].contains(" 0.1826 · val 0.4321 acc 87.5% ─╮"))
        #expect(!at.lines()[0].contains("smooth"))
    }

    @Test func aPinnedMetricIsDrawnUnderTheLossOrInItsPlaceWhenThePanelIsSmall() {
        var f1 = EnvelopeSeries()
        for step in 1...200 { f1.append(step: step, value: Double(step) / 250) }
        let pinned = MetricsGridChart(name: "val/f1", series: [ChartSeries(name: "f1", source: f1, style: Self.palette.smooth)],
                                      valueText: "0.8000", pinned: true)
        let panel = LossChartPanel(runs: [Self.run()], viewStep: 200, window: ChartWindow(steps: 0...250, cursor: 120),
                                   pinned: pinned, palette: Self.palette)
        var tall = Buffer(width: 70, height: 20)
        let plot = try! #require(panel.render(into: &tall, area: tall.area))
        let lines = tall.lines()
        #expect(lines[0].hasPrefix("╭─ loss "))
        let pinnedTop = try! #require(lines.firstIndex { $0.hasPrefix("╭─ ◆ val/f1 ") })
        #expect(pinnedTop >= 10 && lines[pinnedTop].hasSuffix(" @120 0.8000 · m: grid ─╮"))
        #expect(plot.bottom <= pinnedTop)  // clicks and the cursor's stride go by the loss chart
        #expect(lines[(pinnedTop + 1)...].contains { $0.contains("┃") })  // the cursor on the pinned chart too
        var small = Buffer(width: 70, height: 10)
        let smallPlot = panel.render(into: &small, area: small.area)
        #expect(small.lines()[0].hasPrefix("╭─ ◆ val/f1 ") && !small.text.contains("─ loss "))
        #expect(smallPlot != nil)
    }

    @Test func theStatusPanelShowsTheGPUAndTheRanksAtTheViewStep() {
        let run = RunModel(source: nil)
        var records: [RunRecord] = [.header(RunHeader(lrtopVersion: "py", config: [:], seed: 0, startTime: "2025-01-01T00:00:00Z",
                                                      groups: ["all"], stepsPerEpoch: 10, totalSteps: 100))]
        for s in 1...3 {
            records.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: 10, wallTime: Double(s),
                                            metrics: [MetricValue(SystemMetrics.gpuMemPeak, Double(s) * 10e9),
                                                      MetricValue(SystemMetrics.gpuUtil, 50 + Double(s)),
                                                      MetricValue("step_time/rank0", 0.2), MetricValue("step_time/rank1", 0.2 + 0.1 * Double(s))])))
        }
        run.ingest(records)
        func rows(at step: Int) -> String {
            var b = Buffer(width: 50, height: 10)
            StatusPanel(run: run, status: LiveStatus(), view: .init(state: Span("▶ replay"), step: step, epoch: 0, viewStep: step),
                        palette: Self.palette).render(into: &b, area: b.area)
            return b.text
        }
        #expect(rows(at: 2).contains("│gpu   20.0 GB peak · 52%"))
        #expect(rows(at: 2).contains("│ranks 200–400 ms/step · slowest 1"))
        #expect(rows(at: 3).contains("│gpu   30.0 GB peak · 53%"))
        // A run whose records give no GPU figures has no such rows.
        var none = Buffer(width: 50, height: 14)
        StatusPanel(run: Self.run(), status: LiveStatus(), view: .init(state: Span("▶ replay"), step: 100, epoch: 0, viewStep: 100),
                    palette: Self.palette).render(into: &none, area: none.area)
        #expect(!none.text.contains("gpu") && !none.text.contains("ranks"))
    }

    @Test func theStatusPanelsRowsAreTheRunAtTheViewStep() {
        var b = Buffer(width: 44, height: 12)
        let view = StatusPanel.View(state: Span("● running"), step: 200, epoch: 1, selectedGroup: 1, viewStep: 200)
        StatusPanel(run: Self.run(), status: FakeSource.status(at: 200), view: view, palette: Self.palette)
            .render(into: &b, area: b.area)
        #expect(b.lines() == [
            "╭─ status ─────────────────────────────────╮",
            "│state    ● running                        │",
            "│step     200 / 1,000 20% · ep 2 100/100   │",
            "│lr body  9.00e-4                          │",
            "│▸lr head 1.80e-3 HELD override            │",
            "│sched    cosine T_max=1000                │",
            "│loss     0.1414  smooth 0.1420            │",
            "│eval     0.4321 acc 87.5% @200            │",
            "│grad     1.500                            │",
            "│optim    adamw lr=1e-3 wd=0.01            │",
            "│                                          │",
            "╰──────────────────────────────────────────╯",
        ])
        // Without a live status (a replay of a log), the LRs are the tracks' at the view step.
        var r = Buffer(width: 44, height: 6)
        StatusPanel(run: Self.run(), status: LiveStatus(), view: .init(state: Span("▶ replay · paused"), step: 100,
                                                                      epoch: 0, viewStep: 100), palette: Self.palette)
            .render(into: &r, area: r.area)
        #expect(r.lines()[3] == "│lr body 9.50e-4                           │")
    }
}
