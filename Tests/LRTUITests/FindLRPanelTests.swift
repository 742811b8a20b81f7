import Foundation
import Testing
import LRLog
import LRTUI
import LRCommand

/// The find-lr panel as a person uses it: `f` sweeps, the curve and its suggestions appear as the sub-run log
/// grows, the cursor moves, enter applies the pick as a command and the run resumes.
@Suite struct FindLRPanelTests {
    /// A range test's records as the trainer writes them: a bowl-shaped loss from LR 1e-7 up, stopped by the 4x rule.
    static func sweepRecords(fromStep: Int = 50) -> (records: [RunRecord], curve: LRRangeCurve) {
        let settings = LRRangeSettings()
        var curve = LRRangeCurve(settings: settings)
        var records: [RunRecord] = [.header(RunHeader(lrtopVersion: "t", config: settings.configEntries, seed: 1, startTime: "",
                                                      groups: ["all"], stepsPerEpoch: 100, totalSteps: settings.steps,
                                                      subrun: SubRun(kind: .findLR, label: "find-lr", fromStep: fromStep,
                                                                     parent: "../../run.jsonl")))]
        while let lr = curve.nextLR {
            let x = log10(lr) - log10(3e-3)
            let loss = 0.4 + 1.9 / (1 + exp(2.5 * (x + 2.4))) + (x > 0 ? 3 * pow(10, 1.5 * x) : 0)
            curve.append(lr: lr, loss: loss)
            records.append(.step(StepRecord(step: curve.count, epoch: 0, lrs: [lr], loss: loss, gradNorm: 1, samplesPerSec: 1,
                                            wallTime: 0)))
        }
        records.append(.end(EndRecord(reason: .stopped, step: curve.count, epoch: 0, finalLoss: nil, bestEvalLoss: nil,
                                      bestAccuracy: nil, finalAccuracy: nil, wallTime: 0, message: curve.summary)))
        return (records, curve)
    }

    static func lines(_ records: [RunRecord]) -> String {
        records.map { RunLogLine.encode($0) + "\n" }.joined()
    }

    static func runFolder(_ name: String = #function) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("lrtop-findlr-ui-\(getpid())-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("subruns"), withIntermediateDirectories: true)
        return dir
    }

    static func live(_ dir: URL) -> (Dashboard, FakeSource) {
        let src = FakeSource()
        src.current = FakeSource.status(at: 50)
        src.pending = FakeSource.records(steps: 50)
        src.runFolder = dir
        let d = Dashboard(source: src)
        d.update()
        return (d, src)
    }

    /// `f` pressed on a live run whose sweep has run to its end: the panel with the whole curve.
    static func sweptPanel(_ name: String = #function) throws -> (Dashboard, FakeSource, LRRangeCurve) {
        let dir = try runFolder(name)
        let (d, src) = live(dir)
        _ = d.handle(.char("f"))
        let (records, curve) = sweepRecords()
        let sub = dir.appendingPathComponent("subruns/find-lr-50")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try Data(lines(records).utf8).write(to: sub.appendingPathComponent("log.jsonl"))
        d.update()
        return (d, src, curve)
    }

    @Test func fSweepsDrawsTheCurveLiveAndEnterAppliesThePickAndResumes() throws {
        let dir = try Self.runFolder()
        let (d, src) = Self.live(dir)
        _ = d.handle(.char("f"))
        #expect(src.sent == ["pause", "find-lr"])
        #expect(d.overlay == .findLR)
        #expect(d.render(width: 120, height: 36).text.contains("starting the sweep"))

        // The trainer creates the sub-run and writes its first steps: the panel follows the file.
        let (records, curve) = Self.sweepRecords()
        let sub = dir.appendingPathComponent("subruns/find-lr-50")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let log = sub.appendingPathComponent("log.jsonl")
        try Data(Self.lines(Array(records.prefix(31))).utf8).write(to: log)
        d.update()
        var screen = d.render(width: 120, height: 36).text
        #expect(screen.contains("find-lr · subruns/find-lr-50"))
        #expect(screen.contains("sweeping … 30 steps"), "\(screen)")

        // The rest, and its end: the suggestions appear, the cursor starts on valley.
        try Data(Self.lines(records).utf8).write(to: log)
        d.update()
        let valley = try #require(curve.suggestions.valley)
        let s = curve.suggestions
        screen = d.render(width: 120, height: 36).text
        for (name, lr) in s.named { #expect(screen.contains(name + " " + LRRangeCurve.format(lr)), "\(name)") }
        #expect(screen.contains("cursor lr \(LRRangeCurve.format(valley))"))
        #expect(screen.contains("enter: lr \(LRRangeCurve.format(valley))"))
        #expect(screen.contains("stopped: loss > 4x min"))
        // The letters sit on the curve inside the panel.
        for letter in ["V", "S", "M", "D", "L"] { #expect(screen.contains(letter)) }

        // → moves the cursor one point up the curve; tab jumps to the next suggestion.
        _ = d.handle(.right)
        let next = try #require(curve.lrs.first { $0 > valley * 1.0001 })
        #expect(d.findLR?.cursorLR == next)
        #expect(d.render(width: 120, height: 36).text.contains("cursor lr \(LRRangeCurve.format(next))"))
        _ = d.handle(.tab)
        #expect(d.findLR?.cursorLR == s.valley)
        _ = d.handle(.tab)
        #expect(d.findLR?.cursorLR == s.steep)

        // Enter applies it: `lr X`, then the run resumes; the key bar says it was sent.
        let pick = LRRangeCurve.format(try #require(s.steep))
        _ = d.handle(.enter)
        #expect(Array(src.sent.suffix(2)) == ["lr \(pick)", "resume"])
        #expect(d.overlay == .none)
        #expect(d.render(width: 120, height: 36).text.contains("› lr \(pick) …"))
        // The trainer answers with its event and status: both show at once.
        src.pending = [.event(EventRecord(step: 50, kind: .command, text: "lr \(pick)", lrsBefore: [1e-3], lrsAfter: [Double(pick)!],
                                          wallTime: 1))]
        src.current.groups = [LiveStatus.Group(name: "all", lr: Double(pick)!, held: true)]
        d.update()
        let after = d.render(width: 120, height: 36).text
        #expect(after.contains("✓ lr \(pick)"))
        #expect(after.contains(Format.lr(Double(pick)!)))
    }

    @Test func oAppliesThePickAsAOneCycleSchedule() throws {
        let (d, src, curve) = try Self.sweptPanel()
        _ = d.handle(.char("o"))
        #expect(Array(src.sent.suffix(2)) == ["sched onecycle:max_lr=\(LRRangeCurve.format(curve.suggestions.valley!))", "resume"])
    }

    @Test func escClosesWithoutChangeAndTheRunResumes() throws {
        let dir = try Self.runFolder()
        let (d, src) = Self.live(dir)
        _ = d.handle(.char("f"))
        _ = d.handle(.escape)
        #expect(src.sent == ["pause", "find-lr", "resume"])
        #expect(d.overlay == .none && d.findLR == nil)
    }

    @Test func enterBeforeTheSweepEndsWaitsAndAFailedSweepSaysWhy() throws {
        let dir = try Self.runFolder()
        let (d, src) = Self.live(dir)
        _ = d.handle(.char("f"))
        _ = d.handle(.enter)
        #expect(src.sent == ["pause", "find-lr"])
        #expect(d.render(width: 120, height: 36).text.contains("the sweep is still running"))
        src.pending = [.event(EventRecord(step: 50, kind: .error, text: "find-lr", lrsBefore: [], lrsAfter: [],
                                          message: "find-lr: cannot create its sub-run log in /x: permission denied; nothing changed",
                                          wallTime: 1))]
        d.update()
        #expect(d.render(width: 120, height: 36).squeezed.contains("✗ find-lr: cannot create its sub-run log"))
    }

    @Test func aReplayShowsTheRunsFindLRCurveWithFAndFromItsEvent() throws {
        let dir = try Self.runFolder()
        let (records, curve) = Self.sweepRecords(fromStep: 100)
        let sub = dir.appendingPathComponent("subruns/find-lr-100")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try Data(Self.lines(records).utf8).write(to: sub.appendingPathComponent("log.jsonl"))
        var run = replayRun(steps: 300, commands: [])
        run.append(.event(EventRecord(step: 100, kind: .command, text: "find-lr", command: .findLR(LRRangeSettings()),
                                      result: EventResult(subruns: ["subruns/find-lr-100"]), lrsBefore: [1e-3],
                                      lrsAfter: [1e-3], message: "subruns/find-lr-100: " + curve.summary, wallTime: 1)))
        try Data(Self.lines([.header(run.header!)]).utf8).write(to: dir.appendingPathComponent("run.jsonl"))
        run.source = dir.appendingPathComponent("run.jsonl").path
        let source = ReplaySource(runs: [run])
        let d = source.makeDashboard()
        d.update()
        _ = d.handle(.char("f"))
        #expect(d.overlay == .findLR)
        let screen = d.render(width: 120, height: 36).text
        #expect(screen.contains("find-lr · subruns/find-lr-100"))
        #expect(screen.contains("valley " + LRRangeCurve.format(curve.suggestions.valley!)))
        #expect(screen.contains("a replay"))
        _ = d.handle(.enter)
        #expect(d.render(width: 120, height: 36).text.contains("picks apply to a live run"))
        _ = d.handle(.escape)
        #expect(d.overlay == .none)
        // The help says where it is.
        _ = d.handle(.char("?"))
        #expect(d.render(width: 120, height: 40).text.contains("the last find-lr curve up to the cursor"))
        _ = d.handle(.escape)
        // Enter on the find-lr event opens the same curve.
        _ = d.handle(.char("G"))
        d.update()
        for _ in 0..<3 { _ = d.handle(.tab) }   // LR chart → loss chart → events
        _ = d.handle(.enter)
        #expect(d.overlay == .findLR && d.findLR?.folder?.lastPathComponent == "find-lr-100")
    }

    @Test func theChartDrawsTheCurveAndItsLettersAtTheirLRs() throws {
        let curve = Self.sweepRecords().curve
        var buffer = Buffer(width: 80, height: 16)
        let chart = FindLRChart(curve: curve, cursorLR: curve.suggestions.valley, palette: Palette(theme: .builtinDefault, depth: .truecolor))
        chart.render(into: &buffer, area: buffer.area)
        let text = buffer.text
        #expect(text.contains("1e-6") || text.contains("1e-5"))
        #expect(text.contains("V") && text.contains("│"))
        // The valley's letter stands in the column of its LR.
        let area = FindLRChart.plotArea(buffer.area)
        let col = (0..<buffer.height).compactMap { y in (area.x..<area.right).first { buffer[$0, y].symbol == "V" } }.first
        let column = try #require(col)
        let lrThere = try #require(chart.lr(atColumn: column, in: buffer.area))
        #expect(abs(log10(lrThere) - log10(curve.suggestions.valley!)) < 0.2)
    }
}

extension FindLRPanelTests {
    @Test func findLRTypedAtThePromptOpensThePanelToo() throws {
        let dir = try Self.runFolder()
        let (d, src) = Self.live(dir)
        _ = d.handle(.char(":"))
        for ch in "find-lr steps=50" { _ = d.handle(.char(ch)) }
        _ = d.handle(.enter)
        #expect(src.sent == ["pause", "find-lr steps=50"])
        #expect(d.overlay == .findLR)
        // A bad one stays in the prompt with its reason, as any command does.
        _ = d.handle(.escape)
        _ = d.handle(.char(":"))
        for ch in "find-lr steps=2" { _ = d.handle(.char(ch)) }
        _ = d.handle(.enter)
        #expect(src.refused.last == "find-lr steps=2")
        guard case .prompt(let p) = d.overlay else { Issue.record("the prompt closed"); return }
        #expect(p.error?.contains("from 6 to 10000") == true)
    }
}

extension FindLRPanelTests {
    /// On a small terminal every suggestion is still named (the legend takes a second row), and a click on the
    /// chart puts the cursor on the point under it.
    @Test func aSmallTerminalNamesEverySuggestionAndAClickMovesTheCursor() throws {
        let (d, _, curve) = try Self.sweptPanel()
        let screen = d.render(width: 80, height: 24).text
        for (name, lr) in curve.suggestions.named { #expect(screen.contains(name + " " + LRRangeCurve.format(lr)), "\(name)\n\(screen)") }
        let area = try #require(d.findLR?.chartArea)
        let plot = FindLRChart.plotArea(area)
        _ = d.handle(.mouse(MouseEvent(.click, x: plot.x, y: plot.y + 2)))
        #expect(d.findLR?.cursorLR == curve.lrs.first)
        _ = d.handle(.mouse(MouseEvent(.click, x: plot.right - 1, y: plot.y + 2)))
        #expect(d.findLR?.cursorLR == curve.lrs.last)
    }
}

extension FindLRPanelTests {
    /// A sweep that ends after three steps (the loss went NaN) has no suggestion: the panel says so, and the cursor
    /// starts at the lowest loss, never at the largest LR.
    @Test func aSweepTooShortForSuggestionsSaysSoAndStartsAtTheLowestLoss() throws {
        let dir = try Self.runFolder()
        let (d, _) = Self.live(dir)
        _ = d.handle(.char("f"))
        let settings = LRRangeSettings()
        var records: [RunRecord] = [.header(RunHeader(lrtopVersion: "t", config: settings.configEntries, seed: 1, startTime: "",
                                                      groups: ["all"], stepsPerEpoch: 100, totalSteps: 100,
                                                      subrun: SubRun(kind: .findLR, label: "find-lr", fromStep: 50)))]
        for (i, loss) in [1.0, 0.5, Double.nan].enumerated() {
            records.append(.step(StepRecord(step: i + 1, epoch: 0, lrs: [settings.lr(at: i)], loss: loss, gradNorm: 1,
                                            samplesPerSec: 1, wallTime: 0)))
        }
        records.append(.end(EndRecord(reason: .stopped, step: 3, epoch: 0, finalLoss: nil, bestEvalLoss: nil, bestAccuracy: nil,
                                      finalAccuracy: nil, wallTime: 0)))
        let sub = dir.appendingPathComponent("subruns/find-lr-50")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        try Data(Self.lines(records).utf8).write(to: sub.appendingPathComponent("log.jsonl"))
        d.update()
        #expect(d.render(width: 120, height: 36).text.contains("too few points for a suggestion"))
        #expect(d.findLR?.cursorLR == settings.lr(at: 1))
    }
}
