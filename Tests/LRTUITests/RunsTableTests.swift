import Testing
import LRCommand
@testable import LRTUI

/// A runs source the tests fill by hand: what the table was asked to do is recorded, answers come when the test
/// says. (The real one, over live runs, is tested end to end in LRTopCLITests.)
final class TableSource: RunsSource {
    var rows: [RunsRow]
    var sent: [(text: String, ids: [String])] = []
    var answers: [RunsAnswer] = []
    var stacksAsked: [String] = []
    var stacks: [RunsStacks] = []
    var opened: [String] = []
    var closed = 0
    var overlaid: [[String]] = []

    init(_ rows: [RunsRow]) { self.rows = rows }

    func snapshot() -> [RunsRow] { rows }
    func send(_ command: String, to ids: [String]) { sent.append((command, ids)) }
    func drainAnswers() -> [RunsAnswer] { defer { answers = [] }; return answers }
    func requestStacks(of id: String) { stacksAsked.append(id) }
    func drainStacks() -> [RunsStacks] { defer { stacks = [] }; return stacks }
    func dashboard(for id: String) -> Result<RunsChild, RunsSourceError> {
        opened.append(id)
        return .success(RunsChild(dashboard: Dashboard(source: FakeSource()), close: { self.closed += 1 }))
    }
    func overlay(of ids: [String]) -> Result<RunsChild, RunsSourceError> {
        overlaid.append(ids)
        return .success(RunsChild(dashboard: Dashboard(source: FakeSource(isLive: false)), close: { self.closed += 1 }))
    }
}

@Suite struct RunsTableTests {
    static let rows: [RunsRow] = [
        RunsRow(id: "a", name: "seed-1", kind: "plain", host: "gpu7", step: 120, totalSteps: 1000, epoch: 1,
                lrs: [5e-4, 1e-3], groups: ["decay", "no_decay"], loss: 0.4321, lossTrend: [2, 1.5, 1, 0.6, 0.43],
                valLoss: 0.51, valAcc: 0.871, stepsPerSecond: 12.5, samplesPerSecond: 800, etaSeconds: 70,
                gpuPeak: 12.3 * 1_073_741_824, gpuTotal: 80 * 1_073_741_824, stepAge: 0.1, stepTime: 0.08, log: "/r/seed-1/run.jsonl"),
        RunsRow(id: "b", name: "seed-2", kind: "lightning", host: "gpu7", state: "paused", reason: "by a viewer",
                step: 300, totalSteps: 1000, epoch: 2, lrs: [3e-4], loss: 0.3999, lossTrend: [1.9, 1.2, 0.5, 0.4],
                stepsPerSecond: 9, etaSeconds: 120, stepAge: 4, stepTime: 0.1),
        RunsRow(id: "c", name: "ddp-job", kind: "plain", worldSize: 2, host: "gpu8", step: 50, totalSteps: 500,
                lrs: [0.01], loss: 1.2, stepAge: 0.2, stepTime: 0.2,
                ranks: [RunsRow(id: "c#0", name: "ddp-job", rank: 0, host: "gpu8", step: 50, stepAge: 0.2, stepTime: 0.2),
                        RunsRow(id: "c#1", name: "ddp-job", rank: 1, host: "gpu8", step: 50, stepAge: 0.3, stepTime: 0.26)]),
        RunsRow(id: "d", name: "stuck-loader", kind: "hf", host: "gpu7", step: 40, totalSteps: 100, lrs: [1e-4],
                loss: 2.1, stepAge: 30, stepTime: 0.5),
        RunsRow(id: "e", name: "old-run", kind: "lrtop", host: "gpu7", state: "finished", reason: "completed", ended: true,
                step: 1000, totalSteps: 1000, lrs: [1e-5], loss: 0.2),
    ]

    func screen(_ rows: [RunsRow] = rows) -> (RunsScreen, TableSource) {
        let source = TableSource(rows)
        let s = RunsScreen(source: source)
        s.begin(depth: .truecolor, options: TUIOptions())
        return (s, source)
    }

    func draw(_ s: RunsScreen, width: Int = 120, height: Int = 40) -> Buffer {
        var b = Buffer(width: width, height: height)
        s.render(into: &b)
        return b
    }

    func line(_ b: Buffer, containing text: String) -> String { b.trimmedLines().first { $0.contains(text) } ?? "(no line with \(text))" }

    @Test func fullWidthShowsEveryColumnWithTheUIsFormats() throws {
        let (s, _) = screen()
        let b = draw(s)
        let header = b.line(1)
        for c in RunsColumn.allCases { #expect(header.contains(c.title), "no \(c.title) column at 120 wide") }
        let a = (line(b, containing: "seed-1"))
        #expect(a.contains("plain") && a.contains("running") && a.contains("120/1000 12%"))
        #expect(a.contains("5e-4,1e-3"), "compact LR per group")
        for part in ["0.4321", "0.5100 87.1%", "13", "800", "1m10s", "12/80G", "0.1s", "gpu7"] {
            #expect(a.contains(part), "\(part) missing from \(a)")
        }
        #expect(a.contains("▁"), "a trend sparkline")
        let job = (line(b, containing: "ddp-job"))
        #expect(job.contains("plain×2") && job.contains("▸"))
        #expect(line(b, containing: "seed-2").contains("paused: by"))
        // The state in full under the table for the selected run.
        s.state.selectedID = "b"
        #expect(draw(s).line(38).contains("seed-2 · paused: by a viewer"))
    }

    @Test func narrowTerminalKeepsTheColumnsThatMatterAndTinyOneSaysSo() throws {
        let (s, _) = screen()
        let b = draw(s, width: 80, height: 24)
        let header = b.line(1)
        for c in [RunsColumn.name, .state, .step, .loss, .lr, .age] { #expect(header.contains(c.title)) }
        #expect(!header.contains("gpu mem") && !header.contains("smp/s"))
        #expect(b.trimmedLines().allSatisfy { $0.cellWidth <= 80 })
        #expect((line(b, containing: "seed-1")).contains("120/1000 12%"))
        let tiny = draw(s, width: 30, height: 5)
        #expect(tiny.trimmedLines().joined().contains("too small"))
    }

    @Test func endedRowsAreDimmedWithTheirReasonAndStalledOnesFlagged() throws {
        let (s, _) = screen()
        let b = draw(s)
        let lines = b.lines()
        let y = try #require(lines.firstIndex { $0.contains("old-run") })
        #expect(lines[y].contains("completed"))
        s.state.selectedID = "e"
        #expect(draw(s).line(38).contains("old-run · completed"))
        let x = try #require(lines[y].firstIndex(of: "o")).utf16Offset(in: lines[y])
        #expect(b[x, y].fg == s.palette.inactive.fg)
        let stuck = line(b, containing: "stuck-l")
        #expect(stuck.contains("stalled") && stuck.contains("30s ⚠"))
        #expect(RunsTableTests.rows[3].isStalled && !RunsTableTests.rows[0].isStalled)
        // A fast loop between two statuses is not stalled: the flag needs a few seconds without a step as well.
        #expect(!RunsRow(id: "f", name: "fast", stepAge: 1.0, stepTime: 0.05).isStalled)
        #expect(RunsRow(id: "f", name: "fast", stepAge: 3.5, stepTime: 0.05).isStalled)
        #expect(b.line(0).contains("4 live, 1 ended") && b.line(0).contains("1 stalled"))
    }

    @Test func spaceTagsAndTheCommandGoesToEveryTaggedRunWithAnAnswerPerRow() throws {
        let (s, source) = screen()
        // The first row is selected: tag it (the selection moves down), skip b, tag c.
        _ = s.handle(.space)
        _ = s.handle(.down)
        _ = s.handle(.space)
        #expect(s.state.tagged == ["a", "c"])
        _ = s.handle(.char(":"))
        for k in Key.sequence("lr *0.5") { _ = s.handle(k) }
        _ = s.handle(.enter)
        #expect(source.sent.count == 1 && source.sent[0].text == "lr *0.5" && source.sent[0].ids == ["a", "c"])
        var b = draw(s)
        #expect((line(b, containing: "seed-1")).contains("… lr *0.5"))
        source.answers = [RunsAnswer(id: "a", ok: true, message: "lr 2.50e-4 at step 121"),
                          RunsAnswer(id: "c", ok: false, message: "group 'decay' not found")]
        #expect(s.update())
        b = draw(s)
        #expect((line(b, containing: "seed-1")).contains("✓ lr 2.50e-4 at step 121"))
        #expect((line(b, containing: "ddp-job")).contains("✗ group 'decay' not found"))
        #expect(!((line(b, containing: "seed-2")).contains("✓")))
        #expect(b.line(38).contains("lr *0.5 → 2 runs: 1 ✓ 1 ✗ · ddp-job: ✗ group 'decay' not found"))
        // A typo is refused once, in the prompt, and sent to nobody.
        _ = s.handle(.char(":"))
        for k in Key.sequence("lr fast") { _ = s.handle(k) }
        _ = s.handle(.enter)
        #expect(source.sent.count == 1)
        guard case .prompt(let p) = s.overlay else { Issue.record("the prompt closed on a typo"); return }
        #expect(p.error != nil)
    }

    @Test func tagAllUntagAllAndTheKeysActOnTheTagged() {
        let (s, source) = screen()
        _ = s.handle(.char("c"))
        #expect(s.state.tagged.count == 5)
        _ = s.handle(.char("U"))
        #expect(s.state.tagged.isEmpty)
        // With nothing tagged, the keys act on the selected run: the dashboard's LR keys and C.
        _ = s.handle(.char("]"))
        _ = s.handle(.char("-"))
        _ = s.handle(.char("C"))
        let texts = source.sent.map(\.text)
        #expect(texts.count == 3 && texts[0] == "lr *2" && texts[1] == "lr /1.1" && texts[2] == "ckpt", "\(texts)")
        #expect(source.sent.allSatisfy { $0.ids == ["a"] })
        // p pauses the running runs and resumes the paused ones.
        source.sent = []
        _ = s.handle(.char("c"))
        _ = s.handle(.char("p"))
        #expect(source.sent.contains { $0.text == "pause" && $0.ids.contains("a") && !$0.ids.contains("b") })
        #expect(source.sent.contains { $0.text == "resume" && $0.ids == ["b"] })
    }

    @Test func sortByColumnsAndFilterAsTyped() throws {
        let (s, _) = screen()
        _ = s.handle(.function(6))
        for _ in 0..<RunsColumn.loss.rawValue { _ = s.handle(.down) }
        _ = s.handle(.enter)
        #expect(s.state.sortColumn == .loss && !s.state.descending)
        var names = s.display.map(\.name)
        #expect(names.first == "old-run" && names.last == "stuck-loader")
        #expect(draw(s).line(1).contains("loss▲"))
        _ = s.handle(.char("I"))
        #expect(s.display.first?.name == "stuck-loader")
        _ = s.handle(.char(">"))
        #expect(s.state.sortColumn == .trend)
        _ = s.handle(.char("/"))
        for k in Key.sequence("seed") { _ = s.handle(k) }
        names = s.display.map(\.name)
        #expect(Set(names) == ["seed-1", "seed-2"])
        _ = s.handle(.enter)
        #expect(draw(s).line(0).contains("filter: seed"))
        _ = s.handle(.escape)
        #expect(s.display.count == 5)
        // A click on a column's title sorts by it.
        let b = draw(s)
        let x = try #require(b.line(1).range(of: "host")).lowerBound.utf16Offset(in: b.line(1))
        _ = s.handle(.mouse(MouseEvent(.click, x: x, y: 1)))
        #expect(s.state.sortColumn == .host)
        // A click on a row selects it.
        let shown = draw(s).lines()
        let y = try #require(shown.firstIndex { $0.contains("old-run") })
        _ = s.handle(.mouse(MouseEvent(.click, x: 5, y: y)))
        #expect(s.state.selectedID == "e")
    }

    @Test func aJobExpandsIntoItsRanksWithStepTimeSkewAndAge() throws {
        let (s, source) = screen()
        s.state.selectedID = "c"
        _ = s.handle(.right)
        let b = draw(s)
        let r1 = (line(b, containing: "└ rank 1"))
        #expect(r1.contains("0.26s") && r1.contains("running +30%") && r1.contains("0.3s"))
        #expect(line(b, containing: "└ rank 0").contains("0.20s"))
        #expect(b.trimmedLines().contains { $0.contains("step time mean 0.23s max 0.26s") && $0.contains("rank 1 +30%") })
        // Commands to a rank go to its job.
        _ = s.handle(.down); _ = s.handle(.down)
        _ = s.handle(.char("["))
        #expect(source.sent.last?.ids == ["c"])
        _ = s.handle(.left)
        #expect(s.state.selectedID == "c" && !s.display.contains { $0.rank != nil })
    }

    @Test func enterOpensTheDashboardAndEscComesBackWithTagsKept() {
        let (s, source) = screen()
        _ = s.handle(.space)
        _ = s.handle(.space)
        _ = s.handle(.enter)
        #expect(source.opened == ["c"])
        #expect(s.child != nil)
        #expect(!draw(s).line(0).contains("lrtop runs"))
        _ = s.handle(.escape)
        #expect(s.child == nil && source.closed == 1)
        #expect(s.state.tagged == ["a", "b"])
        #expect(draw(s).line(0).contains("lrtop runs"))
        _ = s.handle(.char("o"))
        #expect(source.overlaid == [["a", "b"]])
        _ = s.handle(.char("q"))
        #expect(s.child == nil, "q in an opened dashboard comes back to the table")
    }

    @Test func stacksViewShowsEveryThreadAndScrolls() throws {
        let (s, source) = screen()
        s.state.selectedID = "d"
        _ = s.handle(.char("S"))
        #expect(source.stacksAsked == ["d"])
        #expect(draw(s).trimmedLines().contains { $0.contains("asking the run for its stacks") })
        let frames = (0..<60).map { RunsThreadStack.Frame(file: "/x/train.py", line: $0, function: "f\($0)") }
            + [RunsThreadStack.Frame(file: "/x/train.py", line: 42, function: "load", code: "time.sleep(5)")]
        source.stacks = [RunsStacks(id: "d", threads: [RunsThreadStack(name: "MainThread", isMain: true, frames: frames),
                                                        RunsThreadStack(name: "lrtop-service", frames: [])])]
        _ = s.update()
        var b = draw(s)
        #expect(b.trimmedLines().contains { $0.contains("thread MainThread (main)") })
        #expect(!b.trimmedLines().contains { $0.contains("time.sleep(5)") })
        _ = s.handle(.end)
        b = draw(s)
        #expect(b.trimmedLines().contains { $0.contains("/x/train.py:42 in load") })
        #expect(b.trimmedLines().contains { $0.contains("time.sleep(5)") })
        _ = s.handle(.escape)
        #expect(s.overlay == .none)
        // A Swift run tells its trainer thread's phase.
        var view = RunsScreen.StacksView(id: "e", name: "old-run", ranks: 1)
        view.results = [RunsStacks(id: "e", threads: [RunsThreadStack(name: "trainer", isMain: true, phase: "backward · step 12 · for 2.1 s")])]
        #expect(view.lines.map(\.text).contains("    backward · step 12 · for 2.1 s"))
    }

    @Test func helpListsEveryKey() {
        let (s, _) = screen()
        _ = s.handle(.char("?"))
        let text = draw(s).trimmedLines().joined(separator: "\n")
        for row in RunsKeyMap.helpRows { #expect(text.contains(row.help), "help lacks '\(row.help)'") }
        _ = s.handle(.char("x"))
        #expect(s.overlay == .none)
    }
}

/// A failed expectation shows the screen as text, not every cell's colours.
extension Buffer: CustomTestStringConvertible {
    public var testDescription: String { "\n" + trimmedLines().joined(separator: "\n") }
}
