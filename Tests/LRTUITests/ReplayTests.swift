import Foundation
import Testing
import LRCommand
import LRLog
import LRTUI

extension Buffer {
    /// The text with runs of spaces as one, so checks do not depend on column widths.
    var squeezed: String {
        var out = "", lastSpace = false
        for ch in text {
            if ch == " " { if !lastSpace { out.append(ch) }; lastSpace = true } else { out.append(ch); lastSpace = false }
        }
        return out
    }
}

/// A clock the test moves by hand.
final class ManualClock {
    var now = 1000.0
    func advance(_ seconds: Double) { now += seconds }
}

/// A run as the trainer logs it: steps 1...n, an eval every 100 steps, commands at the given steps.
func replayRun(_ name: String = "base", steps n: Int = 300, commands: [(Int, String)] = [(100, "lr *0.5"), (200, "sched cosine")],
               secondsPerStep: Double = 0.01, lossScale: Double = 1, end: EndReason? = .completed) -> RunData {
    var run = RunData(name: name, source: "/runs/\(name).jsonl", format: .runLog,
                      header: RunHeader(lrtopVersion: "0.1", config: ["optimizer": "adamw", "lr": "0.001", "scheduler": "constant"],
                                        seed: 1, startTime: "2025-01-01T00:00:00Z", groups: ["all"], stepsPerEpoch: 100,
                                        totalSteps: n))
    var lr = 1e-3
    for s in 1...n {
        if let c = commands.first(where: { $0.0 == s - 1 }), c.1.hasPrefix("lr *") { lr *= Double(c.1.dropFirst(4))! }
        run.append(.step(StepRecord(step: s, epoch: (s - 1) / 100, lrs: [lr], loss: lossScale * 2 / Double(s).squareRoot(),
                                    gradNorm: 1.5, samplesPerSec: 1000, wallTime: Double(s) * secondsPerStep)))
        if s % 100 == 0 {
            run.append(.eval(EvalRecord(step: s, epoch: (s - 1) / 100, loss: lossScale * 0.5, accuracy: 0.5 + Double(s) / 1000,
                                        wallTime: Double(s) * secondsPerStep)))
        }
    }
    for (step, text) in commands {
        run.append(.event(logged(EventRecord(step: step, kind: .command, text: text, lrsBefore: [1e-3], lrsAfter: [5e-4],
                                             wallTime: Double(step) * secondsPerStep))))
    }
    if let end {
        run.append(.end(EndRecord(reason: end, step: n, epoch: (n - 1) / 100, finalLoss: nil, bestEvalLoss: nil,
                                  bestAccuracy: nil, finalAccuracy: nil, wallTime: Double(n) * secondsPerStep)))
    }
    return run
}

@Suite struct ReplayTests {
    func replay(_ runs: [RunData] = [replayRun()], options: ReplayOptions = ReplayOptions())
        -> (Dashboard, ReplaySource, ManualClock) {
        let clock = ManualClock()
        let source = ReplaySource(runs: runs, options: options)
        source.clock = { clock.now }
        let d = source.makeDashboard()
        d.update()
        return (d, source, clock)
    }

    func press(_ d: Dashboard, _ keys: Key...) {
        for k in keys { _ = d.handle(k) }
        d.update()
    }

    @Test func opensAtTheEndWithTheWholeRunAndItsInterventions() {
        let (d, source, _) = replay()
        #expect(source.cursor == 300)
        #expect(d.keyMode == .replay)
        let text = d.render(width: 120, height: 40).squeezed
        // The optimizer's LR and the scheduler in force at the cursor, not the header's starting ones (issue #10).
        for s in ["▶ replay · finished · x1", "step 300/300", "100 › lr *0.5", "200 › sched cosine", "optim adamw lr=5.00e-4",
                  "sched cosine @200", "eval 0.5000 acc 80.0% @300"] {
            #expect(text.contains(s), "screen lacks '\(s)':\n\(text)")
        }
        // Interventions are marked on both charts.
        #expect(text.split(separator: "\n").first { $0.contains("learning rate") } != nil)
        #expect(d.render(width: 120, height: 40).lines()[2].contains("▾"))
        // The model was built from columns: every step, the events and the end.
        #expect(d.primary.lastStep == 300 && d.primary.events.count == 2 && d.primary.end?.reason == .completed)
    }

    @Test func keysSeekAndGoTo() {
        let (d, source, _) = replay()
        press(d, .home)
        #expect(source.cursor == 0 && d.status.cursor == 0)
        #expect(d.render(width: 120, height: 40).lines()[0].contains("step 0/300"))
        press(d, .right)
        #expect(source.cursor == 3)  // 1% of 300 steps
        press(d, .pageDown, .pageDown)
        #expect(source.cursor == 63)
        press(d, .left, .pageUp)
        #expect(source.cursor == 30)
        press(d, .char("n"))
        #expect(source.cursor == 31 && d.status.step == 31)
        press(d, .char("G"))
        #expect(source.cursor == 300)
        press(d, .end)
        #expect(source.cursor == 300)
        // The prompt takes a step, or goto STEP.
        press(d, .char(":"))
        for k in Key.sequence("goto 120") { _ = d.handle(k) }
        press(d, .enter)
        #expect(source.cursor == 120)
        #expect(d.render(width: 120, height: 40).text.contains("step 120/300"))
        press(d, .char(":"))
        for k in Key.sequence("250") { _ = d.handle(k) }
        press(d, .enter)
        #expect(source.cursor == 250)
        // Steering commands are refused inline: a replay cannot change the run.
        press(d, .char(":"))
        for k in Key.sequence("lr 1e-4") { _ = d.handle(k) }
        press(d, .enter)
        guard case .prompt(let p) = d.overlay else { Issue.record("prompt closed"); return }
        #expect(p.error?.contains("read-only") == true)
        press(d, .escape)
        // Live-only keys say so instead of doing nothing.
        press(d, .char("]"))
        #expect(d.notice?.text.contains("only while training live") == true)
        #expect(source.cursor == 250)
        // Seeking never goes past either end.
        press(d, .home, .left, .left)
        #expect(source.cursor == 0)
        press(d, .end, .right)
        #expect(source.cursor == 300)
    }

    @Test func playAdvancesTheCursorAndRestartsAtTheEnd() {
        let (d, source, clock) = replay()
        #expect(source.speed == 1)  // 300 steps play in 15 s at x1 (20 steps/s)
        press(d, .home, .space)
        #expect(d.status.state == .running && source.playing)
        clock.advance(1)
        d.update()
        #expect(source.cursor == 20)
        #expect(d.render(width: 120, height: 40).lines()[0].contains("step 20/300"))
        press(d, .char(">"))
        #expect(source.speed == 2)
        clock.advance(1)
        d.update()
        #expect(source.cursor == 60)
        press(d, .char(">"), .char(">"), .char("<"))
        #expect(source.speed == 5)
        press(d, .space)
        #expect(d.status.state == .paused && !source.playing)
        clock.advance(5)
        d.update()
        #expect(source.cursor == 60)
        // Play to the end: it stops there, in the run's end state.
        press(d, .space)
        clock.advance(100)
        d.update()
        #expect(source.cursor == 300 && !source.playing && d.status.state == .finished)
        // Play at the end starts again from the start.
        press(d, .space)
        #expect(source.playing && source.cursor == 0)
        clock.advance(0.5)
        d.update()
        #expect(source.cursor == 50)
        // Every speed from x1 to x1000.
        for _ in 0..<12 { press(d, .char(">")) }
        #expect(source.speed == 1000)
        for _ in 0..<12 { press(d, .char("<")) }
        #expect(source.speed == 1)
    }

    @Test func previousAndNextEventLandOnEventSteps() {
        let (d, source, _) = replay()
        press(d, .home, .char("."))
        #expect(source.cursor == 100)
        press(d, .char("."))
        #expect(source.cursor == 200)
        press(d, .char("."))
        #expect(source.cursor == 200)
        #expect(d.notice?.text.contains("no event after step 200") == true)
        press(d, .char(","))
        #expect(source.cursor == 100)
        press(d, .char("p"))
        #expect(source.cursor == 100)
        press(d, .end, .char("p"))
        #expect(source.cursor == 200)
    }

    @Test func eventsAndValuesStopAtTheCursor() {
        let (d, source, _) = replay()
        _ = source.send("goto 150")
        d.update()
        let text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("100 › lr *0.5"))
        #expect(!text.contains("sched cosine"))
        #expect(text.contains("step 150/300"))
        // Values at the cursor: step 150's loss and LR, the eval at 100.
        #expect(text.contains("loss " + Format.metric(2 / 150.0.squareRoot())))
        #expect(text.contains("lr 5.00e-4"))
        #expect(text.contains("eval 0.5000 acc 60.0% @100"))
        #expect(d.status.step == 150 && d.status.epoch == 1)
        // Before the first command: no marks, no events.
        _ = source.send("goto 50")
        d.update()
        let early = d.render(width: 120, height: 40)
        #expect(!early.text.contains("lr *0.5"))
        #expect(!early.lines()[2].contains("▾"))
    }

    @Test func severalRunsOverlayWithALegendAndCompareTheirFinalMetrics() {
        let a = replayRun("baseline", steps: 300)
        let b = replayRun("warmup-fix", steps: 250, commands: [(120, "lr *2")], lossScale: 0.5)
        let (d, source, _) = replay([a, b])
        #expect(d.runs.count == 2 && d.runs[1].name == "warmup-fix")
        let text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("━ baseline ━ warmup-fix"))
        #expect(text.contains("loss " + Format.metric(2 / 300.0.squareRoot()) + " · acc 80.0%"))
        #expect(text.contains("loss " + Format.metric(1 / 250.0.squareRoot()) + " · acc 70.0% ★"))
        // The cursor belongs to the first run; the overlay is drawn up to it too.
        _ = source.send("goto 100")
        d.update()
        #expect(d.status.cursor == 100)
        // Issue #21 item 8: the header never pairs one run's step with another's epoch. The first run (250 steps, 100
        // an epoch) under a 400-step overlay: at 400 the step is the overlay's, so no epoch beside it; at 200 both
        // are the first run's (epoch 2, shown from 1).
        let (d2, source2, _) = replay([replayRun("short", steps: 250), replayRun("long", steps: 400)])
        var header = d2.render(width: 120, height: 40).lines()[0]
        #expect(header.contains("step 400/400") && !header.contains(" ep "), "\(header)")
        _ = source2.send("goto 200")
        d2.update()
        header = d2.render(width: 120, height: 40).lines()[0]
        #expect(header.contains("step 200/400") && header.contains("ep 2"), "\(header)")
    }

    @Test func alignedByWallTimeTheXAxisIsSeconds() {
        // The same steps, one run twice as slow: by time it ends at twice the x.
        let fast = replayRun("fast", steps: 200, secondsPerStep: 0.05)
        let slow = replayRun("slow", steps: 200, secondsPerStep: 0.1)
        let (d, source, _) = replay([fast, slow], options: ReplayOptions(alignment: .walltime))
        #expect(source.alignment == .walltime)
        guard case .wallTime(let unit) = d.xAxis else { Issue.record("x axis is \(d.xAxis)"); return }
        // A unit near the time per step of the longest run: 20 s / 200 steps.
        #expect(unit == 0.1)
        #expect(d.runs[0].lastStep == 100 && d.runs[1].lastStep == 200)
        // The replay spans both runs: at the end the slow one is drawn whole.
        #expect(source.cursor == 200)
        let text = d.render(width: 120, height: 40).text
        #expect(text.contains("t 20s/20s · step 200"))
        #expect(text.contains("5s"))  // an x-axis label in seconds
        _ = source.send("goto 100")  // a step: the time it was reached
        d.update()
        // Two steps share each 0.1 s of the axis: the later one stands for both.
        #expect((100...101).contains(d.status.step) && source.cursor == 50)
        #expect(d.render(width: 120, height: 40).text.contains("t 5s/20s · step 10"))
        // Without wall times it falls back to steps.
        var noTime = replayRun("x", steps: 50)
        noTime.steps.wallTime = [Double](repeating: .nan, count: 50)
        #expect(ReplaySource(runs: [noTime], options: ReplayOptions(alignment: .walltime)).alignment == .step)
    }

    @Test func gappedAndRolledBackLogs() {
        // Logged every 10 steps (a TensorBoard import): gaps are not data.
        var sparse = RunData(name: "tb", source: "tb", format: .tensorBoard)
        for s in stride(from: 0, through: 1000, by: 10) {
            sparse.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-3], loss: 1 + Double(s) / 1000, gradNorm: .nan,
                                           samplesPerSec: .nan, wallTime: Double(s))))
        }
        let (d, source, _) = replay([sparse])
        #expect(d.primary.loss.summary(in: 0...1000)?.count == 101)
        _ = source.send("goto 15")
        d.update()
        #expect(d.status.step == 10)
        _ = source.send("step")
        d.update()
        #expect(source.cursor == 20)

        // A rollback: steps 1...200, then from 151 again with another loss. The timeline is the second branch.
        var rolled = RunData(name: "r", source: "r", format: .runLog)
        for s in 1...200 { rolled.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: 1, wallTime: Double(s)))) }
        for s in 151...300 { rolled.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-4], loss: 3, gradNorm: 1, samplesPerSec: 1, wallTime: Double(s + 50)))) }
        let (d2, source2, _) = replay([rolled])
        #expect(d2.primary.loss.value(at: 175) == 3)
        #expect(!d2.primary.loss.ghosts.isEmpty)
        _ = source2.send("goto 175")
        d2.update()
        #expect(d2.status.groups.first?.lr == 1e-4)
        _ = source2.send("goto 100")
        d2.update()
        #expect(d2.status.groups.first?.lr == 1e-3)
    }

    /// A rollback as the trainer logs it: steps 1...150, the rollback event (at the step it went back to, 100),
    /// then 101...300. The replay draws the whole run to 300 with 101...150 as a ghost, as the live view does, and
    /// drops the abandoned branch's evaluation.
    @Test func aRollbackEventDoesNotCutTheReplay() {
        var run = RunData(name: "rb", source: "/runs/rb/run.jsonl", format: .runLog,
                          header: RunHeader(lrtopVersion: "0.1", config: [:], seed: 1, startTime: "2025-01-01T00:00:00Z",
                                            groups: ["all"], stepsPerEpoch: 300, totalSteps: 300))
        var wall = 0.0
        func step(_ s: Int, loss: Double) {
            wall += 0.01
            run.append(.step(StepRecord(step: s, epoch: 0, lrs: [1e-3], loss: loss, gradNorm: 1, samplesPerSec: 1, wallTime: wall)))
        }
        for s in 1...150 { step(s, loss: 1) }
        run.append(.eval(EvalRecord(step: 120, epoch: 0, loss: 9, accuracy: 0.1, wallTime: wall)))
        run.append(.event(EventRecord(step: 100, kind: .command, text: "rollback", command: .rollback,
                                      result: EventResult(rolledBackTo: 100), lrsBefore: [1e-3], lrsAfter: [1e-3], wallTime: wall)))
        for s in 101...300 { step(s, loss: 2) }
        run.append(.eval(EvalRecord(step: 300, epoch: 0, loss: 0.5, accuracy: 0.9, wallTime: wall)))
        run.append(.end(EndRecord(reason: .completed, step: 300, epoch: 0, finalLoss: 2, bestEvalLoss: 0.5, bestAccuracy: 0.9,
                                  finalAccuracy: 0.9, wallTime: wall)))
        let (d, source, _) = replay([run])
        #expect(source.cursor == 300)
        #expect(d.status.step == 300)
        #expect(d.primary.lastStep == 300)
        #expect(d.primary.loss.value(at: 250) == 2)
        #expect(d.primary.loss.value(at: 120) == 2)
        #expect(d.primary.loss.ghosts.count == 1)
        #expect(d.primary.loss.ghosts.first?.from == 101)
        #expect(d.primary.loss.ghosts.first?.series.lastStep == 150)
        #expect(d.primary.evalLoss.values == [0.5])
    }

    @Test func helpAndKeyBarShowTheReplayKeys() {
        let (d, _, _) = replay()
        let bar = d.render(width: 120, height: 40).lines()[39]
        #expect(bar.contains("␣ play") && bar.contains("G end") && !bar.contains("lr×2"))
        press(d, .char("?"))
        let help = d.render(width: 120, height: 40).text
        for b in KeyMap.bindings(for: .replay) { #expect(help.contains(b.help), "help lacks '\(b.help)'") }
        #expect(!help.contains("LR ×2"))
        // One key, one action, in each mode.
        for mode in KeyMode.allCases {
            let keys = KeyMap.bindings(for: mode).flatMap(\.keys)
            #expect(Set(keys).count == keys.count, "a key is bound twice in \(mode)")
        }
    }

    @Test func loopOverAMemoryBackend() throws {
        let clock = ManualClock()
        let source = ReplaySource(runs: [replayRun()])
        source.clock = { clock.now }
        let d = source.makeDashboard()
        let backend = MemoryBackend(width: 120, height: 40, script: [.idle(1), .key(.home), .idle(1), .key(.char(".")), .idle(2)])
        let reason = try TUIApp.run(d, options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        #expect(reason == .interrupted(signal: MemoryBackend.endOfScriptSignal))
        #expect(backend.frames.contains { $0.lines()[0].contains("step 0/300") })
        #expect(backend.screen.lines()[0].contains("step 100/300"))
        #expect(backend.screen.text.contains("100 › lr *0.5"))
    }

    /// A million steps: built in bulk, and a seek redraws within a frame (50 ms; debug builds get more room).
    @Test func seekingAMillionStepRunRedrawsWithinAFrame() {
        let n = 1_000_000
        var run = RunData(name: "1M", source: "1M", format: .runLog, groups: ["all"])
        run.steps.step = Array(1...n)
        run.steps.epoch = [Int32](repeating: 0, count: n)
        run.steps.loss = (0..<n).map { Float(2 / (1 + Double($0) / 1000)) }
        run.steps.lrs = [(0..<n).map { 1e-3 * Double(n - $0) / Double(n) }]
        run.steps.gradNorm = [Float](repeating: 1, count: n)
        run.steps.samplesPerSec = [Float](repeating: 5000, count: n)
        run.steps.wallTime = (0..<n).map { Double($0) * 0.001 }
        run.events = [logged(EventRecord(step: 400_000, kind: .command, text: "lr *0.5", lrsBefore: [], lrsAfter: [],
                                         wallTime: 400))]
        let clock = ContinuousClock()
        var d: Dashboard!
        var source: ReplaySource!
        let build = clock.measure {
            source = ReplaySource(runs: [run])
            d = source.makeDashboard()
            d.update()
        }
        var buffer = Buffer(width: 160, height: 48)
        d.render(into: &buffer)
        #expect(buffer.text.contains("1,000,000"))
        var worst = Duration.zero
        for c in ["goto start", "seek +10%", "event next", "goto 777777", "seek -1%", "step", "goto end"] {
            for _ in 0..<Dashboard.zoomLevels.count {
                let t = clock.measure {
                    _ = source.send(c)
                    d.update()
                    d.render(into: &buffer)
                }
                worst = max(worst, t)
                _ = d.perform(.cycleZoom)
            }
        }
        print("1M-step replay: build \(build), worst seek + frame \(worst)")
        #expect(source.cursor == n)
        #expect(worst < .milliseconds(250))
        // Zoomed into the start of the run the chart still has per-step detail (no 512-step blocks).
        #expect(d.primary.loss.summary(in: 10...10)?.count ?? 99 <= 8)
    }
}

@Suite(.serialized) struct WatchTests {
    @Test func followsALogAsItIsWrittenAndShowsTheEnd() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-watch-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let clock = ManualClock()
        let source = WatchSource(url: url, pollInterval: 0.1)
        source.clock = { clock.now }
        let d = Dashboard(source: source)
        d.update()
        #expect(d.keyMode == .watch)
        #expect(d.status.state == .starting)
        #expect(d.render(width: 120, height: 40).text.contains("waiting for run.jsonl to appear"))

        let writer = try RunLogWriter(url: url)
        try writer.write(.header(RunHeader(lrtopVersion: "0.1", config: ["optimizer": "sgd", "lr": "0.1"], seed: 1,
                                           startTime: "2025-01-01T00:00:00Z", groups: ["all"], stepsPerEpoch: 10, totalSteps: 40)))
        for s in 1...20 {
            try writer.write(step: StepRecord(step: s, epoch: 0, lrs: [0.1], loss: 1, gradNorm: 1, samplesPerSec: 10, wallTime: Double(s)))
        }
        try writer.write(.event(EventRecord(step: 20, kind: .command, text: "lr *0.5", lrsBefore: [0.1], lrsAfter: [0.05], wallTime: 20)))
        try writer.flush()
        clock.advance(0.2)
        d.update()
        #expect(d.primary.lastStep == 20)
        var text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("◉ watching · running"))
        #expect(text.contains("step 20/40"))
        #expect(text.contains("20 › lr *0.5"))
        #expect(text.contains("optim sgd lr=0.1"))
        // Polls are spaced: nothing is read before the interval.
        for s in 21...40 {
            try writer.write(step: StepRecord(step: s, epoch: 1, lrs: [0.05], loss: 0.5, gradNorm: 1, samplesPerSec: 10, wallTime: Double(s)))
        }
        try writer.write(end: EndRecord(reason: .completed, step: 40, epoch: 3, finalLoss: 0.5, bestEvalLoss: nil,
                                        bestAccuracy: nil, finalAccuracy: nil, wallTime: 40))
        try writer.close()
        clock.advance(0.01)
        d.update()
        #expect(d.primary.lastStep == 20)
        clock.advance(0.2)
        d.update()
        #expect(d.primary.lastStep == 40)
        text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("◉ watching · finished"))
        // How it ended is said once, by the state word and the status panel's end row (not `finished · ended: completed`).
        #expect(!text.contains("ended: completed"))
        #expect(text.contains("end completed"))
        // Read-only.
        press(d, .char("]"))
        #expect(d.notice?.text.contains("only while training live") == true)
    }

    func press(_ d: Dashboard, _ keys: Key...) {
        for k in keys { _ = d.handle(k) }
        d.update()
    }

    @Test func aFileThatIsNotALogIsAnErrorInTheStatus() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-watch-\(UUID().uuidString.prefix(8)).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try "hello\nworld\n".write(to: url, atomically: true, encoding: .utf8)
        let source = WatchSource(url: url)
        let d = Dashboard(source: source)
        d.update()
        #expect(d.status.state == .failed)
        #expect(d.render(width: 120, height: 40).text.contains("not an lrtop run log"))
    }
}

/// A log written before events carried their command (run log schema 1) still replays with the meaning of its
/// events: the scheduler switch in force at the cursor, a rollback's ghost branch, a `PAUSE` in the running clock.
@Suite struct OldLogReplayTests {
    @Test func aSchemaOneLogReplaysWithItsEventsUnderstood() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-old-log-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines = [#"{"type":"header","schema":1,"lrtop_version":"0.1.0","start_time":"2025-11-25T02:50:00Z","seed":0,"groups":["all"],"steps_per_epoch":100,"total_steps":300,"config":{"optimizer":"sgd","lr":"0.1","scheduler":"constant"}}"#]
        func step(_ s: Int, wall: Double) -> String {
            #"{"type":"step","step":\#(s),"epoch":0,"lrs":[0.1],"loss":\#(2.0 / Double(s)),"grad_norm":1,"samples_per_sec":100,"wall_time":\#(wall)}"#
        }
        for s in 1...100 { lines.append(step(s, wall: Double(s) * 0.01)) }
        lines.append(#"{"type":"event","step":100,"kind":"command","text":"sched cosine:T_max=200","lrs_before":[0.1],"lrs_after":[0.1],"wall_time":1}"#)
        lines.append(#"{"type":"event","step":100,"kind":"command","text":"PAUSE","lrs_before":[0.1],"lrs_after":[0.1],"wall_time":1}"#)
        lines.append(#"{"type":"event","step":100,"kind":"command","text":"resume","lrs_before":[0.1],"lrs_after":[0.1],"wall_time":601}"#)
        for s in 101...150 { lines.append(step(s, wall: 601 + Double(s - 100) * 0.01)) }
        lines.append(#"{"type":"event","step":120,"kind":"command","text":"rollback","lrs_before":[0.1],"lrs_after":[0.1],"message":"rolled back from step 150 to step 120 (manual)","wall_time":601.5}"#)
        for s in 121...200 { lines.append(step(s, wall: 601.5 + Double(s - 120) * 0.01)) }
        let url = dir.appendingPathComponent("run.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)

        let run = try RunLogReader.readRun(at: url)
        #expect(run.events.map(\.command) == [.sched("cosine:T_max=200"), .pause, .resume, .rollback])
        let source = ReplaySource(runs: [run], options: ReplayOptions(startAt: 150))
        let d = source.makeDashboard()
        d.update()
        #expect(d.render(width: 120, height: 40).squeezed.contains("sched cosine:T_max=200 @100"))
        // The ten paused minutes are not running time: 200 steps at 100 a second.
        #expect(d.primary.stepsPerSecAverage.map { ($0 - 100).magnitude < 1 } == true)
        // Steps 121-150 were rolled back: their first pass is a ghost behind the timeline.
        #expect(!d.primary.loss.ghostSources.isEmpty)
    }
}
