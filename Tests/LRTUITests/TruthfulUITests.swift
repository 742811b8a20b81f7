import Foundation
import Testing
import LRCommand
import LRLog
import LRTUI

/// What the person sees agrees with what happened: rejections look rejected, figures side by side agree, every
/// panel shows the state after an intervention at once (issue #10).
@Suite struct TruthfulUITests {
    func dashboard(steps: Int = 400, batch: Int? = nil) -> (Dashboard, FakeSource) {
        let src = FakeSource()
        var recs = FakeSource.records(steps: steps)
        if let batch, case .header(var h) = recs[0] {
            h.config["batch_size"] = String(batch)
            recs[0] = .header(h)
        }
        src.pending = recs
        src.current = FakeSource.status(at: steps)
        let d = Dashboard(source: src)
        d.update()
        return (d, src)
    }

    func event(_ step: Int, _ kind: EventRecord.Kind, _ text: String, _ message: String? = nil, wall: Double) -> RunRecord {
        .event(EventRecord(step: step, kind: kind, text: text, lrsBefore: [1e-3], lrsAfter: [1e-3], message: message,
                           wallTime: wall))
    }

    /// The bottom rows of a frame, joined with spaces (a wrapped message reads as one line).
    func bottom(_ b: Buffer, rows: Int) -> String {
        b.lines().suffix(rows).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    // MARK: feedback

    @Test func aCommandTheTrainerRejectsShowsTheCrossAndTheWholeMessageOnTheKeyBar() {
        let (d, src) = dashboard()
        _ = d.handle(.char(":"))
        for k in Key.sequence("lr head 1e-3") { _ = d.handle(k) }
        _ = d.handle(.enter)
        #expect(d.overlay == .none)
        #expect(d.render(width: 80, height: 24).lines()[23].hasPrefix("› lr head 1e-3 …"))
        let why = "no param group 'head': groups are body, emb, and the LR keys act on all groups unless g picks one"
        src.pending = [event(400, .error, "lr head 1e-3", why, wall: 4.1)]
        d.update()
        let frame = d.render(width: 80, height: 24)
        #expect(bottom(frame, rows: 2) == "✗ lr head 1e-3: " + why + " (at step 400)")
        #expect(d.notice?.kind == .error)
        #expect(d.awaitingAnswer.isEmpty)
    }

    /// Issue #21 item 5: a script that numbers epochs from 1 (its records' epoch one ahead) without saying so: the
    /// in-epoch count still moves with the step (`ep 2 50/100` at step 150), never stuck at 0.
    @Test func theInEpochCountFollowsTheStepNotTheRecordsEpoch() {
        let src = FakeSource()
        src.pending = [.header(RunHeader(lrtopVersion: "t", config: [:], seed: 0, startTime: "", groups: ["all"],
                                         stepsPerEpoch: 100, totalSteps: 300))]
        for k in 1...150 {
            src.pending.append(.step(StepRecord(step: k, epoch: (k - 1) / 100 + 1, lrs: [1e-3], loss: 1, gradNorm: 1,
                                                samplesPerSec: 1, wallTime: Double(k))))
        }
        var status = src.current
        status.step = 150
        status.stepsPerEpoch = 100
        status.totalSteps = 300
        src.current = status
        let d = Dashboard(source: src)
        d.update()
        let text = d.render(width: 120, height: 40).lines().joined(separator: "\n")
        #expect(text.contains(" 50/100"), "\(text)")
        #expect(!text.contains(" 0/100"), "\(text)")
    }

    /// Issue #21 item 8: a log without a rate (Lightning's NaN samples/s, no batch size) shows `--`, never `nan`.
    @Test func aMissingRateIsADashNotNaN() {
        let src = FakeSource()
        src.pending = [.step(StepRecord(step: 1, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: .nan, wallTime: 1)),
                       .step(StepRecord(step: 2, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: .nan, wallTime: 2))]
        let d = Dashboard(source: src)
        d.update()
        let text = d.render(width: 120, height: 40).lines().joined(separator: "\n")
        #expect(!text.contains("nan"), "\(text)")
        #expect(text.contains("samples/s --"), "\(text)")
    }

    @Test func aCommandThatAppliedIsConfirmed() {
        let (d, src) = dashboard()
        _ = d.handle(.char("]"))
        src.pending = [.event(EventRecord(step: 400, kind: .command, text: "lr *2", lrsBefore: [8e-4], lrsAfter: [1.6e-3],
                                          wallTime: 4.1))]
        d.update()
        #expect(d.render(width: 80, height: 24).lines()[23].hasPrefix("✓ lr *2: lr 8.00e-4→1.60e-3 (at step 400)"))
    }

    @Test func afterTheRunHasFinishedSteeringKeysSaySo() {
        let (d, src) = dashboard()
        src.current.state = .finished
        src.pending = [.end(EndRecord(reason: .completed, step: 400, epoch: 3, finalLoss: 0.1, bestEvalLoss: nil,
                                      bestAccuracy: nil, finalAccuracy: nil, wallTime: 4))]
        d.update()
        for k: Key in [.char("]"), .space, .char("u")] {
            _ = d.handle(k)
            let text = bottom(d.render(width: 120, height: 40), rows: 2)
            #expect(text.contains("the run has finished: nothing left to steer"), "\(k): \(text)")
            #expect(text.contains("q quits"))
        }
        #expect(src.sent.isEmpty)
    }

    @Test func spaceSaysResumeWhilePaused() {
        let (d, src) = dashboard()
        #expect(d.render(width: 120, height: 40).lines()[39].contains("␣ pause"))
        src.current.state = .paused
        d.update()
        let bar = d.render(width: 120, height: 40).lines()[39]
        #expect(bar.contains("␣ resume"))
        #expect(!bar.contains("␣ pause"))
    }

    // MARK: figures

    @Test func etaIsPausedWhilePausedAndUsesRunningTimeOnly() {
        let (d, src) = dashboard(steps: 400, batch: 128)
        // 100 steps/s; then paused for 10 minutes; one step while paused; resumed.
        src.pending = [event(400, .command, "pause", wall: 4.0)]
        src.current.state = .paused
        d.update()
        let paused = d.render(width: 120, height: 40)
        #expect(paused.lines()[0].contains("ETA paused"))
        #expect(paused.text.contains("ETA paused"))  // the gauge too
        src.pending = [.step(StepRecord(step: 401, epoch: 4, lrs: [1e-3, 2e-3], loss: 0.1, gradNorm: 1, samplesPerSec: 12_800,
                                        wallTime: 300)),
                       event(401, .command, "resume", wall: 604)]
        src.pending += steps(402...450, resumedAt: 604, after: 401)
        resumedAt450(d, src)
        // 5.5 s (`resumedAt450`), written to the second either way.
        let header = d.render(width: 120, height: 40).lines()[0]
        #expect(header.contains("ETA 6s") || header.contains("ETA 5s"), "\(header)")
        #expect(d.primary.stepsPerSecAverage.map { ($0 - 100).magnitude < 1 } == true)
    }

    /// Issue #21 item 13: the ETA does not swing with a busy second (steps alternating 200/s and 50/s second by
    /// second: their 125/s on average), and a fork's wait and the jump to the adopted branch's end are not the rate.
    @Test func theETAIsSmoothAndAForksWaitIsNotItsRate() {
        let model = RunModel(source: nil)
        model.ingest(.header(RunHeader(lrtopVersion: "t", config: [:], seed: 0, startTime: "", groups: ["all"],
                                       stepsPerEpoch: 1000, totalSteps: 100_000)))
        var step = 0, wall = 0.0
        func run(seconds: Int) -> [Double] {
            var etas: [Double] = []
            for second in 0..<seconds {
                let perSecond = second % 2 == 0 ? 200 : 50
                for _ in 0..<perSecond {
                    step += 1
                    wall += 1 / Double(perSecond)
                    model.ingest(.step(StepRecord(step: step, epoch: 0, lrs: [1e-3], loss: 1, gradNorm: 1, samplesPerSec: .nan,
                                                  wallTime: wall)))
                }
                if let e = model.eta { etas.append(e * 125 / Double(100_000 - step)) }  // 1 when the rate is 125/s
            }
            return etas
        }
        let settled = run(seconds: 90).suffix(30)
        #expect(settled.allSatisfy { (0.9...1.1).contains($0) }, "\(settled)")
        // A fork at this step; its branches train for 100 s; `adopt 1` jumps the run 500 steps ahead.
        model.ingest(.event(EventRecord(step: step, kind: .command, text: "fork lr=1e-3 steps=500",
                                        command: .fork(Command.Fork(branches: [], steps: 500)), lrsBefore: [1e-3], lrsAfter: [1e-3],
                                        wallTime: wall)))
        wall += 100
        step += 500
        model.ingest(.event(EventRecord(step: step, kind: .command, text: "adopt 1", command: .adopt(1), lrsBefore: [1e-3],
                                        lrsAfter: [1e-3], wallTime: wall)))
        let after = run(seconds: 4)
        #expect(after.allSatisfy { (0.85...1.15).contains($0) }, "\(after)")
    }

    /// Steps at 100 a second from `wall`, the first one `after` + 1.
    func steps(_ range: ClosedRange<Int>, resumedAt wall: Double, after: Int) -> [RunRecord] {
        range.map { s in
            .step(StepRecord(step: s, epoch: 4, lrs: [1e-3, 2e-3], loss: 0.1, gradNorm: 1, samplesPerSec: 12_800,
                             wallTime: wall + Double(s - after) * 0.01))
        }
    }

    /// The run at step 450 after a pause: 550 steps left at 100 steps/s, the paused minutes not counted.
    func resumedAt450(_ d: Dashboard, _ src: FakeSource, sourceLocation: SourceLocation = #_sourceLocation) {
        src.current = FakeSource.status(at: 450)
        d.update()
        #expect(d.primary.eta.map { ($0 - 5.5).magnitude < 0.01 } == true, "eta \(String(describing: d.primary.eta))",
                sourceLocation: sourceLocation)
    }

    /// `:PAUSE` pauses the trainer (verbs are read case-blind), and the figures know it from the parsed command,
    /// not from the text: the ETA says paused and nothing is being trained, and after `:Resume` the paused ten
    /// minutes are not in the rates (issue #22: the UI compared `text == "pause"`).
    @Test func aPauseTypedInCapitalsPausesTheFiguresToo() throws {
        let (d, src) = dashboard(steps: 400, batch: 128)
        func type(_ text: String) {
            _ = d.handle(.char(":"))
            for k in Key.sequence(text) { _ = d.handle(k) }
            _ = d.handle(.enter)
        }
        type("PAUSE")
        #expect(src.commands == [.pause] && src.sent == ["PAUSE"])
        // The trainer logs it as typed, with the command it parsed.
        let pause = EventRecord(step: 400, kind: .command, text: "PAUSE", command: .pause, lrsBefore: [8e-4],
                                lrsAfter: [8e-4], wallTime: 4.0)
        src.pending = [.event(pause)]
        src.current.state = .paused
        d.update()
        let paused = d.render(width: 160, height: 48)
        #expect(paused.lines()[0].contains("ETA paused"))
        let f = try #require(throughputFigures(paused))
        #expect(f.stepsNow == "0" && f.samplesNow == "0")
        // A watched log knows it from the same event: no live status says paused there.
        let watched = RunModel(source: nil)
        watched.ingest(FakeSource.records(steps: 400) + [.event(pause)])
        #expect(watched.isPaused && watched.samplesPerSecNow == 0)

        type("Resume")
        #expect(src.commands.last == .resume)
        src.pending = [.event(EventRecord(step: 400, kind: .command, text: "Resume", command: .resume, lrsBefore: [8e-4],
                                          lrsAfter: [8e-4], wallTime: 604))]
        src.pending += steps(401...450, resumedAt: 604, after: 400)
        resumedAt450(d, src)
        let resumed = try #require(throughputFigures(d.render(width: 160, height: 48)))
        #expect(resumed.stepsAvg == "100" && resumed.stepsNow == "100")
    }

    /// The figures of the throughput panel, as drawn.
    func throughputFigures(_ b: Buffer) -> (samplesNow: String, samplesAvg: String, stepsNow: String, stepsAvg: String)? {
        let lines = b.lines()
        guard let sLine = lines.first(where: { $0.contains("samples/s ") && $0.contains(" now · ") }),
              let tLine = lines.first(where: { $0.contains("steps/s ") && $0.contains(" now · ") }) else { return nil }
        func figures(_ line: String, _ label: String) -> (String, String) {
            let rest = line.components(separatedBy: label)[1].split(separator: "│")[0]
            let words = rest.split(separator: " ").map(String.init)
            return (words[0], words[3])
        }
        let (sn, sa) = figures(sLine, "samples/s ")
        let (tn, ta) = figures(tLine, "steps/s ")
        return (sn, sa, tn, ta)
    }

    func number(_ compact: String) -> Double {
        if compact.hasSuffix("k") { return Double(compact.dropLast())! * 1e3 }
        if compact.hasSuffix("M") { return Double(compact.dropLast())! * 1e6 }
        return Double(compact)!
    }

    @Test func samplesPerSecondIsStepsPerSecondTimesTheBatchOnThePanel() throws {
        let (d, src) = dashboard(steps: 400, batch: 128)
        // The records' own samples/s (the step's compute only) disagree with the wall clock on purpose.
        src.pending = [event(400, .command, "pause", wall: 4.0), event(400, .command, "resume", wall: 64)]
        for s in 401...700 {
            src.pending.append(.step(StepRecord(step: s, epoch: 4, lrs: [1e-3, 2e-3], loss: 0.1, gradNorm: 1,
                                                samplesPerSec: 80_000, wallTime: 64 + Double(s - 400) * 0.02)))
        }
        src.current = FakeSource.status(at: 700)
        d.update()
        let f = try #require(throughputFigures(d.render(width: 160, height: 48)))
        #expect(f.stepsNow == "50")
        #expect(f.samplesNow == "6.4k")
        #expect((number(f.samplesNow) - number(f.stepsNow) * 128).magnitude <= number(f.samplesNow) * 0.02)
        #expect((number(f.samplesAvg) - number(f.stepsAvg) * 128).magnitude <= number(f.samplesAvg) * 0.02)
        // The minute paused is not in the average: 700 steps in 4 s + 6 s.
        #expect(f.stepsAvg == "70")
        // Paused: nothing is being trained now, both say so.
        src.pending = [event(700, .command, "pause", wall: 71)]
        src.current.state = .paused
        d.update()
        let p = try #require(throughputFigures(d.render(width: 160, height: 48)))
        #expect(p.stepsNow == "0" && p.samplesNow == "0")
    }

    @Test func overlaidReplayCountsToTheLongestRunAndTheBarStopsAtFull() {
        let source = ReplaySource(runs: [replayRun("short", steps: 300), replayRun("long", steps: 1000)])
        let d = source.makeDashboard()
        d.update()
        let b = d.render(width: 120, height: 40)
        #expect(b.lines()[0].contains("step 1,000/1,000"))
        #expect(!b.text.contains("333%"))
        #expect(b.text.contains("100%"))
    }

    // MARK: after an intervention

    @Test func rollbackWhilePausedUpdatesEveryPanelAtOnce() {
        let (d, src) = dashboard(steps: 400)
        src.current.state = .paused
        src.pending = [event(400, .command, "pause", wall: 4.0),
                       event(400, .checkpoint, "ckpt", wall: 4.1),
                       .event(EventRecord(step: 250, kind: .command, text: "rollback", lrsBefore: [1e-3], lrsAfter: [1e-3],
                                          message: "rolled back from step 400 to step 250 (manual)", wallTime: 4.2))]
        d.update()
        // No step has come since: the panels already show step 250.
        #expect(d.primary.lastStep == 250)
        let b = d.render(width: 120, height: 40)
        #expect(b.lines()[0].contains("step 250/1,000"))
        #expect(b.lines()[0].contains("ep 3"))
        #expect(b.text.contains("250 / 1,000 25%"))
        #expect(b.text.contains("loss    " + Format.metric(2 / 250.0.squareRoot())))
        #expect(b.text.contains("acc 87.5% @200"))   // the evaluation at 300 was on the abandoned branch
        #expect(!b.text.contains("@400"))
        #expect(d.primary.loss.ghosts.count == 1)    // drawn dimmed
        // The event list keeps the order things happened in: the rollback (step 250) is the latest.
        let events = b.lines().filter { $0.contains("↺") || $0.contains("› rollback") || $0.contains("◆ ckpt") }
        let rollbackRow = b.lines().firstIndex { $0.contains("› rollback") }
        let ckptRow = b.lines().firstIndex { $0.contains("◆ ckpt") }
        #expect(rollbackRow != nil && ckptRow != nil && rollbackRow! < ckptRow!, "\(events)")
        // The next step continues the restored branch.
        src.pending = [.step(StepRecord(step: 251, epoch: 2, lrs: [1e-3, 2e-3], loss: 9, gradNorm: 1, samplesPerSec: 100,
                                        wallTime: 5))]
        d.update()
        #expect(d.primary.lastStep == 251)
        #expect(d.primary.loss.lastValue == 9)
    }

    @Test func replayShowsTheSchedulerAndOptimizerInForceAtTheCursor() {
        let run = replayRun(commands: [(100, "lr *0.5"), (200, "sched step:step_size=10,gamma=0.5")])
        let source = ReplaySource(runs: [run], options: ReplayOptions(startAt: 50))
        let d = source.makeDashboard()
        d.update()
        var text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("sched constant"))
        #expect(text.contains("optim adamw lr=1.00e-3"))
        _ = source.send("goto 250")
        d.update()
        text = d.render(width: 120, height: 40).squeezed
        #expect(text.contains("sched step:step_size=10,gamma=0.5 @200"))
        #expect(text.contains("optim adamw lr=5.00e-4"))
    }

    @Test func replaySpeedTakesAnyValueItAccepts() {
        let source = ReplaySource(runs: [replayRun()])
        #expect(source.send("speed x3") == nil)
        #expect(source.speed == 3)
        #expect(source.send("speed x5000") == "speed up, speed down or speed xN (x1 … x1000)")
        #expect(source.speed == 3)
        _ = source.send("speed up")
        #expect(source.speed == 5)
    }

    // MARK: names and layout

    @Test func runsAreNamedByTheShortestDistinctPartOfTheirPath() {
        #expect(RunNames.distinct(paths: ["/w/runs/0512_1030/run.jsonl", "/w/runs/0513_0900/run.jsonl"]) == ["0512_1030", "0513_0900"])
        #expect(RunNames.distinct(paths: ["/a/sgd/0512/run.jsonl", "/a/adam/0512/run.jsonl", "/a/lion/x/run.jsonl"])
                == ["sgd/0512", "adam/0512", "x"])
        func run(_ path: String, header: String? = nil) -> RunData {
            let name = String(path.split(separator: "/").last!)
            return RunData(name: name, source: path, format: .runLog,
                           header: header.map { RunHeader(lrtopVersion: "0.1", config: ["name": $0], seed: 1, startTime: "",
                                                          groups: [], stepsPerEpoch: 1, totalSteps: nil) })
        }
        let named = RunNames.assign([run("/r/1/run.jsonl"), run("/r/2/run.jsonl"), run("/r/b.csv"),
                                     run("/r/3/run.jsonl", header: "baseline")])
        #expect(named.map(\.name) == ["1", "2", "b.csv", "baseline"])
        // A name that is not shared stays as the loader gave it.
        #expect(RunNames.assign([run("/r/1/run.jsonl")]).map(\.name) == ["run.jsonl"])
        // The names show in the replay's legend.
        let source = ReplaySource(runs: RunNames.assign([replayRun("a"), replayRun("b"), replayRun("c")].enumerated().map { i, r in
            var r = r
            r.name = "run.jsonl"
            r.source = "/runs/0512_10\(i)0/run.jsonl"
            return r
        }))
        let d = source.makeDashboard()
        d.update()
        #expect(d.render(width: 120, height: 40).text.contains("━ 0512_1000 ━ 0512_1010 ━ 0512_1020"))
    }

    @Test(arguments: [(60, 18), (80, 24), (120, 40), (200, 60)])
    func headerAndKeyBarKeepWhatMattersAtEverySize(size: (Int, Int)) {
        let (d, _) = dashboard(steps: 400)
        d.primary.setStatus({ var s = d.status; s.title = "mlp · Fashion-MNIST · 20260512_103000"; return s }())
        let b = d.render(width: size.0, height: size.1)
        let header = b.lines()[0], bar = b.lines()[size.1 - 1]
        for part in ["● running", "step 400/1,000", "ETA 6s", "lr 8.00e-4"] {
            #expect(header.contains(part), "\(size): header '\(header)' lacks '\(part)'")
        }
        for part in ["? help", "q quit", "␣ pause"] {
            #expect(bar.contains(part), "\(size): key bar '\(bar)' lacks '\(part)'")
        }
        if size.0 >= 120 { #expect(header.contains("Fashion-MNIST") && header.contains("lrtop") && header.contains("ep 4")) }
    }

    @Test func tickLabelsAreDistinctAtEveryZoom() {
        let (d, _) = dashboard(steps: 900)
        for _ in Dashboard.zoomLevels {
            let b = d.render(width: 120, height: 40)
            let axis = b.lines().first { $0.contains("└") }!
            let plot = axis.split(separator: "└", maxSplits: 1)[1].split(separator: "│")[0]
            let labels = plot.split(whereSeparator: { $0 == "─" || $0 == "┘" || $0 == "╯" || $0 == " " }).map(String.init)
            #expect(labels.count >= 2, "\(d.zoom): \(axis)")
            #expect(Set(labels).count == labels.count, "\(d.zoom): repeated tick labels in \(labels)")
            _ = d.handle(.char("z"))
        }
    }

    // MARK: what an htop user expects

    @Test func chartCursorShowsTheStepAndEverySeriesValue() {
        let (d, _) = dashboard(steps: 400)
        _ = d.handle(.tab)
        #expect(d.focus == .lrChart)
        #expect(d.chartCursor == 400)
        for _ in 0..<3 { _ = d.handle(.left) }
        let c = try! #require(d.chartCursor)
        #expect(c < 400)
        let text = d.render(width: 120, height: 40).text
        #expect(text.contains("@" + Format.grouped(c) + " body " + Format.lr(FakeSource.lr(step: c, group: 0))
                              + " · head " + Format.lr(FakeSource.lr(step: c, group: 1))))
        #expect(text.contains("@" + Format.grouped(c) + " · loss " + Format.metric(2 / Double(c).squareRoot())))
        _ = d.handle(.escape)
        #expect(d.focus == nil && d.chartCursor == nil)
    }

    @Test func theEventListScrollsAndOpensOneEventInFull() {
        let (d, src) = dashboard(steps: 400)
        let path = "/home/me/runs/20260512_103000/checkpoints/step-00000400-03.ckpt"
        src.pending = (0..<30).map { i in event(400, .info, "note \(i)", "note number \(i)", wall: 5 + Double(i)) }
            + [event(400, .checkpoint, "ckpt", "saved " + path, wall: 40)]
        d.update()
        for _ in 0..<3 { _ = d.handle(.tab) }
        #expect(d.focus == .events)
        _ = d.handle(.enter)
        guard case .eventDetail(let e) = d.overlay else { Issue.record("no event opened"); return }
        #expect(e.text == "ckpt")
        #expect(d.render(width: 80, height: 24).squeezed.contains(path))
        _ = d.handle(.escape)
        for _ in 0..<25 { _ = d.handle(.down) }
        let text = d.render(width: 80, height: 24).text
        #expect(text.contains("note 5"))       // the 26th latest: scrolled down to it
        #expect(!text.contains("note 29"))
    }

    @Test func mouseClicksFocusAndOpenAndTheWheelZooms() throws {
        let (d, src) = dashboard(steps: 400)
        src.pending = [event(400, .error, "sched bogus", "unknown scheduler 'bogus' (valid: constant, cosine, step)", wall: 5)]
        d.update()
        _ = d.render(width: 120, height: 40)
        let layout = try #require(DashboardLayout(area: Rect(x: 0, y: 0, width: 120, height: 40)))
        // Wheel up over a chart zooms in: run → last 2000 → last 200; down zooms out to the whole run.
        _ = d.handle(.mouse(MouseEvent(.wheelUp, x: layout.lrChart.x + 10, y: layout.lrChart.y + 3)))
        #expect(d.zoom == .last(2000))
        _ = d.handle(.mouse(MouseEvent(.wheelDown, x: layout.lossChart.x + 10, y: layout.lossChart.y + 3)))
        _ = d.handle(.mouse(MouseEvent(.wheelDown, x: layout.lossChart.x + 10, y: layout.lossChart.y + 3)))
        #expect(d.zoom == .full)
        // A click on the loss chart focuses it and puts the cursor under the pointer.
        _ = d.render(width: 120, height: 40)
        _ = d.handle(.mouse(MouseEvent(.click, x: layout.lossChart.x + layout.lossChart.width / 2, y: layout.lossChart.y + 3)))
        #expect(d.focus == .lossChart)
        #expect(d.chartCursor != nil)
        // A click on the latest event opens it.
        _ = d.handle(.mouse(MouseEvent(.click, x: layout.events.x + 3, y: layout.events.y + 1)))
        guard case .eventDetail(let e) = d.overlay else { Issue.record("no event opened"); return }
        #expect(e.text == "sched bogus")
        _ = d.handle(.mouse(MouseEvent(.click, x: 1, y: 1)))
        #expect(d.overlay == .none)
    }

    @Test func f1IsHelpAndF10Quits() {
        let (d, src) = dashboard()
        _ = d.handle(.function(1))
        #expect(d.overlay == .help)
        _ = d.handle(.escape)
        src.current.state = .finished
        d.update()
        #expect(d.handle(.function(10)) == .quit)
    }

    @Test func theViewIsRememberedInTheConfigFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-xdg-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try #require(ViewPreferences.file(environment: ["XDG_CONFIG_HOME": dir.path, "HOME": "/nonexistent"]))
        #expect(file == dir.path + "/lrtop/view.conf")
        let (d, _) = dashboard()
        var saved: [ViewPreferences] = []
        d.onViewChange = { p in saved.append(p); p.save(to: file) }
        _ = d.handle(.char("z"))
        _ = d.handle(.char("e"))
        _ = d.handle(.char("t"))
        #expect(saved.count == 3)
        let loaded = ViewPreferences.load(from: file)
        #expect(loaded == d.viewPreferences)
        #expect(loaded.zoom == 1 && loaded.smoothing == 2)
        let fresh = Dashboard(source: FakeSource())
        fresh.apply(loaded)
        #expect(fresh.zoom == .full && fresh.smoothingWeight == 0.9)
        #expect(ViewPreferences.load(from: dir.path + "/missing.conf") == ViewPreferences())
    }

    // MARK: terminals

    @Test func theASCIIFallbackDrawsOnlyASCIIAndKeepsTheLayout() {
        let (d, _) = dashboard(steps: 400)
        let frame = d.render(width: 80, height: 24)
        let ascii = ASCIIFallback.apply(frame)
        #expect(ascii.text.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(ascii.lines()[1].hasPrefix("+- learning rate (log) -"))
        #expect(ascii.lines().count == frame.lines().count)
        #expect(ascii.text.contains(":") || ascii.text.contains("."))   // the charts, as dots
        #expect(ASCIIFallback.symbol("⣿") == ":" && ASCIIFallback.symbol("⠉") == "'" && ASCIIFallback.symbol("⣀") == ".")
        #expect(ASCIIFallback.needed(environment: ["TERM": "linux"], forced: false))
        #expect(ASCIIFallback.needed(environment: ["TERM": "xterm-256color"], forced: true))
        #expect(!ASCIIFallback.needed(environment: ["TERM": "xterm-256color"], forced: false))
    }

    @Test func theMonoThemeUsesOnlyTheEightANSIColours() {
        let store = ThemeStore(searchPaths: [ThemeTests.repoThemes])
        let mono = store.load("mono").theme
        for depth in [ColorDepth.xterm256, .ansi8] {
            for (key, _) in Theme.keys {
                switch depth.degrade(mono[key]) {
                case .index(let i): #expect(i < 8, "mono \(key) at \(depth): colour \(i)")
                case .default: break
                case .rgb: Issue.record("mono \(key) at \(depth): direct colour")
                }
            }
        }
    }

    @Test func theOptimizerIsShownAsItIsTyped() {
        #expect(Format.typeable("adamw lr=1e-3 betas=(0.9,0.999) wd=0.01") == "adamw lr=1e-3 betas=0.9/0.999 wd=0.01")
        let (d, src) = dashboard()
        src.current.optimizer = "adam lr=1e-3 betas=(0.9,0.999)"
        d.update()
        #expect(d.render(width: 160, height: 48).text.contains("adam lr=1e-3 betas=0.9/0.999"))
    }

    @Test func aWatchedLogSeparatesTheStateFromItsMessage() {
        let src = FakeSource(status: LiveStatus(title: "run", state: .starting, message: "waiting for the first step"),
                             isLive: false)
        let d = Dashboard(source: src)
        d.update()
        #expect(d.render(width: 120, height: 40).lines()[0].contains("◉ watching · starting · waiting for the first step"))
    }

    @Test func aLongKeyBelowTheFoldDoesNotSqueezeTheStatusValues() {
        var b = Buffer(width: 20, height: 1)
        KeyValueList(items: [("lr", [Span("7.34e-4")]), ("checkpoints", [Span("3 in memory")])])
            .render(into: &b, area: b.area)
        #expect(b.lines()[0].hasPrefix("lr 7.34e-4"))
    }
}
