import Testing
import LRLog
import LRTUI
#if canImport(Glibc)
import Glibc
#endif

@Suite struct DashboardTests {
    func dashboard(steps: Int = 400, live: Bool = true) -> (Dashboard, FakeSource) {
        let src = FakeSource(isLive: live)
        src.pending = FakeSource.records(steps: steps)
        src.current = FakeSource.status(at: steps)
        let d = Dashboard(source: src)
        d.update()
        return (d, src)
    }

    @Test func keysSendCommands() {
        let (d, src) = dashboard()
        for k: Key in [.space, .char("n"), .char("+"), .char("-"), .char("]"), .char("["), .char("r"), .char("R"),
                       .char("c"), .char("u")] {
            #expect(d.handle(k) == .none)
        }
        #expect(src.sent == ["pause", "step", "lr *1.1", "lr /1.1", "lr *2", "lr /2", "lr release", "lr reset", "ckpt", "rollback"])
        // Space resumes when paused.
        src.current.state = .paused
        d.update()
        _ = d.handle(.space)
        #expect(src.sent.last == "resume")
        // The last command shows on the key bar.
        #expect(d.render(width: 80, height: 24).lines()[23].hasPrefix("› resume"))
    }

    @Test func groupCyclingTargetsLRCommands() {
        let (d, src) = dashboard()
        #expect(d.selectedGroup == nil)
        _ = d.handle(.char("g"))
        #expect(d.selectedGroup == 0)
        _ = d.handle(.char("]"))
        #expect(src.sent.last == "lr body *2")
        _ = d.handle(.char("g"))
        _ = d.handle(.char("-"))
        #expect(src.sent.last == "lr head /1.1")
        _ = d.handle(.char("r"))
        #expect(src.sent.last == "lr head release")
        _ = d.handle(.char("g"))
        #expect(d.selectedGroup == nil)
        _ = d.handle(.char("["))
        #expect(src.sent.last == "lr /2")
        // The header shows the target.
        _ = d.handle(.char("g"))
        #expect(d.render(width: 80, height: 24).lines()[0].contains("lr→body"))
        #expect(d.command(for: .scaleLR(2))?.description == "lr body *2")
    }

    @Test func quitAsksWhileTrainingRuns() {
        let (d, _) = dashboard()
        #expect(d.handle(.char("q")) == .none)
        #expect(d.overlay == .confirmQuit)
        let screen = d.render(width: 80, height: 24)
        #expect(screen.text.contains("quit? training is still running (y/n)"))
        #expect(d.handle(.char("n")) == .none)
        #expect(d.overlay == .none)
        _ = d.handle(.char("q"))
        #expect(d.handle(.char("y")) == .quit)
        // Finished runs and replays quit at once.
        let (f, fsrc) = dashboard()
        fsrc.current.state = .finished
        f.update()
        #expect(f.handle(.char("q")) == .quit)
        let (r, _) = dashboard(live: false)
        #expect(r.handle(.char("q")) == .quit)
    }

    /// Issue #21 item 13: after a refused command, `:` (pressed as if the prompt had closed) starts a fresh command
    /// instead of being appended to the bad text; the bad one is still in the history.
    @Test func colonAfterARefusalStartsAFreshCommand() {
        let (d, src) = dashboard()
        _ = d.handle(.char(":"))
        for k in Key.sequence("sched") { _ = d.handle(k) }
        _ = d.handle(.enter)
        guard case .prompt(let refused) = d.overlay, refused.error != nil else { Issue.record("no inline error"); return }
        _ = d.handle(.char(":"))
        for k in Key.sequence("pause") { _ = d.handle(k) }
        _ = d.handle(.enter)
        #expect(src.sent.last == "pause", "\(src.sent)")
        #expect(d.overlay == .none)
        #expect(d.commandHistory == ["sched", "pause"])
    }

    @Test func promptSendsAndShowsErrorsInline() {
        let (d, src) = dashboard()
        _ = d.handle(.char(":"))
        guard case .prompt(let p) = d.overlay else { Issue.record("no prompt"); return }
        #expect(p.hint.contains("lr 8.00e-4"))
        for k in Key.sequence("lr abc") { _ = d.handle(k) }
        _ = d.handle(.enter)
        // Parsed once, here: refused at once, and handed to the run to log.
        #expect(src.sent.isEmpty && src.refused == ["lr abc"])
        guard case .prompt(let p2) = d.overlay else { Issue.record("prompt closed on error"); return }
        #expect(p2.error?.hasPrefix("invalid LR 'abc': expected a number like 3e-4") == true)
        let lines = d.render(width: 80, height: 24).lines()
        #expect(lines[22].hasPrefix("✗ invalid LR 'abc'"))
        #expect(lines[23].hasPrefix(":lr abc"))
        // Fix it: history has the bad command; edit and send.
        for _ in 0..<3 { _ = d.handle(.backspace) }
        for k in Key.sequence("3e-4") { _ = d.handle(k) }
        _ = d.handle(.enter)
        #expect(src.sent.last == "lr 3e-4" && src.commands.last == .lr(group: nil, .set(3e-4)))
        #expect(d.overlay == .none)
        #expect(d.commandHistory == ["lr abc", "lr 3e-4"])
        // Up recalls it next time.
        _ = d.handle(.char(":"))
        _ = d.handle(.up)
        guard case .prompt(let p3) = d.overlay else { Issue.record("no prompt"); return }
        #expect(p3.text == "lr 3e-4")
        _ = d.handle(.escape)
        #expect(d.overlay == .none)
    }

    @Test func warmupPrefillsThePrompt() {
        let (d, src) = dashboard()
        _ = d.handle(.char("w"))
        guard case .prompt(let p) = d.overlay else { Issue.record("no prompt"); return }
        #expect(p.text == "warmup 200")
        _ = d.handle(.enter)
        #expect(src.sent.last == "warmup 200")
    }

    @Test func schedulerMenuSendsSched() {
        let (d, src) = dashboard()
        _ = d.handle(.char("s"))
        guard case .schedulerMenu(let m) = d.overlay else { Issue.record("no menu"); return }
        #expect(m.spec == "cosine:T_max=1000,eta_min=0")  // preselected from the status
        #expect(d.render(width: 80, height: 24).text.contains("▸ cosine"))
        _ = d.handle(.down)
        src.rejections["sched step:step_size=100,gamma=0.1"] = "step_size must be positive"
        _ = d.handle(.enter)
        guard case .schedulerMenu(let m2) = d.overlay else { Issue.record("menu closed on error"); return }
        #expect(m2.error == "step_size must be positive")
        #expect(d.render(width: 80, height: 24).text.contains("✗ step_size must be positive"))
        _ = d.handle(.up)
        _ = d.handle(.enter)
        #expect(src.sent.last == "sched cosine:T_max=1000,eta_min=0")
        #expect(d.overlay == .none)
    }

    @Test func viewKeysChangeTheView() {
        let (d, src) = dashboard()
        #expect(d.lrScale == .log)
        _ = d.handle(.char("l"))
        #expect(d.lrScale == .linear)
        #expect(d.render(width: 80, height: 24).lines()[1].contains("learning rate ─"))
        _ = d.handle(.char("L"))
        #expect(d.lossScale == .log)
        #expect(d.zoom == .run)
        _ = d.handle(.char("z"))
        #expect(d.zoom == .full)
        #expect(d.visibleSteps == 0...1000)
        _ = d.handle(.char("z"))
        _ = d.handle(.char("z"))
        #expect(d.zoom == .last(200))
        #expect(d.visibleSteps.lowerBound == 201)
        #expect(d.smoothingWeight == 0.6)
        _ = d.handle(.char("e"))
        #expect(d.smoothingWeight == 0.9)
        _ = d.handle(.char("e")); _ = d.handle(.char("e"))
        #expect(d.smoothingWeight == 0)
        _ = d.handle(.char("?"))
        #expect(d.overlay == .help)
        #expect(d.render(width: 80, height: 24).text.contains("keys — esc closes"))
        _ = d.handle(.escape)
        #expect(d.overlay == .none)
        // The built-in themes, in the binary: `t` cycles them with no theme file anywhere.
        _ = d.handle(.char("t"))
        #expect(d.theme.name == "basic")
        _ = d.handle(.char("t"))
        #expect(d.theme.name == "colorblind")
        #expect(src.sent.isEmpty)  // view keys send nothing
    }

    @Test func rendersAt80x24WithValuesFromRecords() {
        let (d, _) = dashboard()
        let b = d.render(width: 80, height: 24)
        let lines = b.lines()
        #expect(lines.count == 24)
        #expect(lines[0].contains("mnist-mlp"))
        #expect(lines[0].contains("● running"))
        #expect(lines[0].contains("step 400/1,000"))
        let text = b.text
        for s in ["learning rate (log)", "loss", "status", "throughput", "events",
                  "400 / 1,000", "lr body 8.00e-4", "lr head 1.60e-3 HELD", "cosine T_max=1000",
                  "adamw", "13k samples/s", "100 st/s", "40% ETA 6s",
                  "160 ✗ lr abc", "150 › lr *2", "␣ pause", "? help"] {
            #expect(text.contains(s), "80x24 lacks '\(s)'")
        }
        // The y axis of the LR chart has log labels, the x axis step labels.
        #expect(text.contains("1e-3┤"))
        #expect(text.contains("└0"))
        #expect(text.contains("400"))
        // The intervention at step 150 is marked.
        #expect(text.contains("▾"))
        // Validation points.
        #expect(text.contains("●"))
        // Smoothed loss in the loss title.
        #expect(lines.contains { $0.contains("smooth 0.6") })
    }

    @Test func rendersAt160x48() {
        let (d, _) = dashboard()
        let b = d.render(width: 160, height: 48)
        let text = b.text
        for s in ["samples/s 13k now · 13k avg", "steps/s   100 now · 100 avg", "eval    0.4321 acc 87.5% @400",
                  "lr head 1.60e-3 HELD override", "grad    1.500", "optim   adamw lr=1e-3 wd=0.01", "q quit",
                  "val 0.4321 acc 87.5%"] {
            #expect(text.contains(s), "160x48 lacks '\(s)'")
        }
        #expect(DashboardLayout(area: b.area)?.isCompact == false)
        #expect(DashboardLayout(area: Rect(width: 80, height: 24))?.isCompact == true)
    }

    @Test func tooSmallShowsOnlyTheMessage() {
        let (d, _) = dashboard()
        let b = d.render(width: 59, height: 30)
        #expect(b.trimmedLines().filter { !$0.isEmpty } == ["    terminal too small: need at least 60x18, have 59x30"])
        #expect(DashboardLayout(area: Rect(width: 60, height: 17)) == nil)
        #expect(DashboardLayout(area: Rect(width: 60, height: 18)) != nil)
        #expect(d.render(width: 60, height: 18).text.contains("learning rate"))
    }

    @Test func replayDrawsUpToTheCursor() {
        let (d, src) = dashboard(steps: 400, live: false)
        src.current.cursor = 200
        src.current.planned = nil
        d.update()
        let text = d.render(width: 80, height: 24).text
        #expect(text.contains("▶ replay"))
        #expect(text.contains("step 200/1,000"))
        #expect(text.contains("cursor  200"))
        #expect(text.contains("160 ✗"))  // events before the cursor are listed
        src.current.cursor = 155
        src.current.groups = []
        d.update()
        let at155 = d.render(width: 100, height: 30).text
        #expect(!at155.contains("160 ✗"))
        #expect(at155.contains("150 › lr *2"))
        // Values at the cursor come from the tracks.
        #expect(at155.contains("lr body " + Format.lr(FakeSource.lr(step: 155, group: 0))))
        #expect(at155.contains("loss    " + Format.metric(2 / 155.0.squareRoot())))
        #expect(at155.contains("eval    0.4321 acc 87.5% @100"))
        // Space is a command of the replay language (play/pause of the replay source); nothing is steered.
        _ = d.handle(.space)
        #expect(src.controls == [.pause] && src.sent.isEmpty)
    }

    @Test func overlaidRunsGetALegend() {
        let a = FakeSource(isLive: false), b = FakeSource(isLive: false)
        a.pending = FakeSource.records(steps: 300, groups: 1)
        b.pending = FakeSource.records(steps: 250, groups: 1)
        a.current = FakeSource.status(at: 300); a.current.title = "baseline"
        b.current = FakeSource.status(at: 250); b.current.title = "warmup-fix"
        let d = Dashboard(source: a, overlays: [b])
        d.update()
        #expect(d.runs.count == 2)
        let text = d.render(width: 100, height: 30).text
        #expect(text.contains("━ baseline ━ warmup-fix"))
    }

    @Test func rollbackDrawsAGhostAndKeepsTheTimeline() {
        let (d, src) = dashboard(steps: 300)
        // The trainer rolls back to step 200 and goes on with a higher loss.
        var recs: [RunRecord] = [.event(EventRecord(step: 200, kind: .rollback, text: "rollback", lrsBefore: [], lrsAfter: [],
                                                    message: "to step 200", wallTime: 3))]
        for s in 201...220 {
            recs.append(.step(StepRecord(step: s, epoch: 2, lrs: [1e-4, 2e-4], loss: 5, gradNorm: 1, samplesPerSec: 100, wallTime: 3 + Double(s) / 100)))
        }
        src.pending = recs
        src.current = FakeSource.status(at: 220)
        d.update()
        #expect(d.primary.lastStep == 220)
        #expect(d.primary.loss.ghosts.count == 1)
        #expect(d.primary.loss.summary(in: 201...300)?.max == 5)
        let text = d.render(width: 80, height: 24).text
        #expect(text.contains("↺"))
    }
}

@Suite struct AppLoopTests {
    @Test func loopDrawsOnlyChangedCellsAndRestores() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 50)
        src.current = FakeSource.status(at: 50)
        let backend = MemoryBackend(width: 80, height: 24, script: [.idle(3), .key(.char("?")), .idle(3), .key(.escape), .idle(3)])
        let reason = try TUIApp.run(Dashboard(source: src), options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        #expect(reason == .interrupted(signal: MemoryBackend.endOfScriptSignal))
        #expect(backend.restoreCount == 1)
        #expect(backend.frames.count >= 3)
        // The first frame writes every cell, later ones only what changed.
        #expect(backend.changedCellCounts[0] == 80 * 24)
        #expect(backend.changedCellCounts.dropFirst().allSatisfy { $0 < 80 * 24 })
        #expect(backend.frames.contains { $0.text.contains("keys — esc closes") })
        #expect(!backend.screen.text.contains("keys — esc closes"))
        #expect(backend.screen.text.contains("mnist-mlp"))
    }

    @Test func loopAt160x48ShowsRecordValues() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 400)
        src.current = FakeSource.status(at: 400)
        let backend = MemoryBackend(width: 160, height: 48, script: [.idle(2), .key(.char("g")), .idle(2)])
        _ = try TUIApp.run(Dashboard(source: src), options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        let text = backend.screen.text
        for s in ["step 400/1,000", "lr→body", "▸lr body 8.00e-4", "0.4321 acc 87.5% @400",
                  "steps/s   100 now · 100 avg", "160 ✗ lr abc  bad value", "LR keys act on group body"] {
            #expect(text.contains(s), "160x48 screen lacks '\(s)'")
        }
        #expect(backend.screen.lines().count == 48)
    }

    @Test func idleLoopDoesNotRedraw() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 10)
        src.current = FakeSource.status(at: 10)
        let backend = MemoryBackend(script: [.idle(50)])
        _ = try TUIApp.run(Dashboard(source: src), options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        #expect(backend.frames.count == 1)
    }

    @Test func newRecordsAreDrawn() throws {
        let src = FakeSource()
        src.current = FakeSource.status(at: 0)
        let backend = MemoryBackend(script: [.idle(2)])
        // Records arrive while the loop runs: the backend's script feeds them through a resize-free idle.
        final class Feeder: RunSource {
            let inner: FakeSource
            var calls = 0
            init(_ inner: FakeSource) { self.inner = inner }
            func drain() -> [RunRecord] {
                calls += 1
                return calls == 2 ? FakeSource.records(steps: 120) : []
            }
            func status() -> LiveStatus { calls >= 2 ? FakeSource.status(at: 120) : inner.current }
            var isLive: Bool { true }
        }
        let feeder = Feeder(src)
        _ = try TUIApp.run(Dashboard(source: feeder), options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        #expect(backend.frames.first?.text.contains("waiting for data") == true)
        #expect(backend.screen.text.contains("step 120/1,000"))
    }

    @Test func quitKeyEndsTheLoopAfterConfirmation() throws {
        let src = FakeSource()
        src.current = FakeSource.status(at: 0)
        let backend = MemoryBackend(script: [.key(.char("q")), .idle(1), .key(.char("y"))])
        #expect(try TUIApp.run(Dashboard(source: src), options: TUIOptions(pollMs: 0), backend: backend) == .quit)
        #expect(backend.restoreCount == 1)
        #expect(backend.frames.last?.text.contains("quit? training is still running (y/n)") == true)
    }

    @Test func signalsInterruptAndResizeRedraws() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 20)
        src.current = FakeSource.status(at: 20)
        let backend = MemoryBackend(width: 80, height: 24, script: [.idle(1), .resize(width: 50, height: 10), .idle(1),
                                                                   .resize(width: 100, height: 30), .idle(1), .signal(15)])
        let reason = try TUIApp.run(Dashboard(source: src), options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend)
        #expect(reason == .interrupted(signal: 15))
        #expect(backend.frames.map(\.width) == [80, 50, 100])
        #expect(backend.frames[1].text.contains("too small: need 60x18, have 50x10"))
        #expect(backend.changedCellCounts[2] == 100 * 30)
        #expect(backend.restoreCount == 1)
    }

    @Test func exitWhenFinished() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 5) + [.end(EndRecord(reason: .completed, step: 5, epoch: 0, finalLoss: 1,
                                                                      bestEvalLoss: nil, bestAccuracy: nil, finalAccuracy: nil, wallTime: 1))]
        src.current = FakeSource.status(at: 5)
        src.current.state = .finished
        let backend = MemoryBackend(script: [.idle(100)])
        #expect(try TUIApp.run(Dashboard(source: src), options: TUIOptions(maxFPS: 0, pollMs: 0, exitWhenFinished: true), backend: backend) == .finished)
        #expect(backend.screen.text.contains("completed"))
    }

    @Test func monochromeRendersWithoutColours() throws {
        let src = FakeSource()
        src.pending = FakeSource.records(steps: 30)
        src.current = FakeSource.status(at: 30)
        let d = Dashboard(source: src, depth: .none)
        d.update()
        _ = d.handle(.char("s"))
        let b = d.render(width: 80, height: 24)
        #expect(b.cells.allSatisfy { $0.fg == .default && $0.bg == .default })
        #expect(b.cells.contains { $0.flags.contains(.reverse) })  // the selected scheduler
    }
}

@Suite struct NcursesBackendTests {
    @Test(.enabled(if: isatty(STDIN_FILENO) == 0 || isatty(STDOUT_FILENO) == 0))
    func refusesToStartWithoutATerminal() {
        let src = FakeSource()
        #expect(throws: TUIError.notATerminal) {
            _ = try TUIApp.run(Dashboard(source: src))
        }
        #expect(TUIError.notATerminal.description.contains("needs a terminal"))
    }
}
