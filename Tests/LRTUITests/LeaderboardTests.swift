import Testing
import LRTUI

/// A sweep driven by the test.
final class FakeSweep: LeaderboardSource {
    var current: LeaderboardModel
    var stopped = false
    init(_ model: LeaderboardModel) { current = model }
    func model() -> LeaderboardModel { current }
    func stop() { stopped = true }
}

@Suite struct LeaderboardTests {
    static let columns: [TrialColumn] = [
        .configuration("config"), .configuration("lr"), .configuration("sched"), .result("rung"),
        .result("val loss", better: .lower), .series("val loss curve"), .state(),
    ]

    static func row(_ name: String, lr: Double, sched: String, rung: String, loss: Double?, curve: [Double?],
                    state: String, tone: TrialTone) -> TrialRow {
        TrialRow(id: name, cells: [.text(name), .number(lr, .lr), .text(sched), .text(rung),
                                   loss.map { .estimate(mean: $0, spread: 0.01, .metric) } ?? .missing,
                                   .series(curve), .state(state, tone)])
    }

    static func model(finished: Bool = false) -> LeaderboardModel {
        LeaderboardModel(
            title: "sweep · runs/sweep-1", progress: "rung 2/3 · step 60 · 14 trial-rungs done · 1 running · 3s",
            columns: columns,
            rows: [
                row("c01", lr: 1e-3, sched: "cosine", rung: "1/3", loss: 0.9, curve: [1.2, 0.9], state: "stopped", tone: .stopped),
                row("c02", lr: 1e-2, sched: "plateau", rung: "2/3", loss: 0.3, curve: [1.0, 0.6, 0.3], state: "running", tone: .active),
                row("c03", lr: 1e-1, sched: "step", rung: "—", loss: nil, curve: [], state: "failed", tone: .bad),
            ],
            finished: finished,
            footer: finished ? ["done · best c02: adamw lr=0.01 warmup=0 plateau", "lrtop train --lr 0.01 --scheduler plateau"] : [],
            details: ["c03": "c03 adamw lr=0.1 warmup=0 step: trials/c03; c03 diverged at step 12"])
    }

    func draw(_ board: Leaderboard, width: Int = 100, height: Int = 16) -> Buffer {
        var b = Buffer(width: width, height: height)
        board.render(into: &b)
        return b
    }

    @Test func drawsTheTrialsWithRungStateAndProgress() {
        let board = Leaderboard(source: FakeSweep(Self.model()))
        let b = draw(board)
        let lines = b.trimmedLines()
        #expect(lines[0].contains("sweep · runs/sweep-1") && lines[0].contains("rung 2/3 · step 60"))
        #expect(lines[1].contains("config") && lines[1].contains("val loss curve") && lines[1].contains("state"))
        #expect(lines[2].contains("c01") && lines[2].contains("1.00e-3") && lines[2].contains("0.9000 ±0.0100") && lines[2].contains("stopped"))
        #expect(lines[3].contains("c02") && lines[3].contains("running") && lines[3].contains("2/3"))
        #expect(lines[4].contains("c03") && lines[4].contains("failed") && lines[4].contains("—"))
        #expect(lines.last!.contains("s sort column") && lines.last!.contains("q stop & quit"))
    }

    @Test func sortingAndSelectingFromTheKeyboard() {
        let board = Leaderboard(source: FakeSweep(Self.model()))
        for _ in 0..<5 { _ = board.handle(.char("s")) }  // the 5th column: val loss, best first
        var lines = draw(board).trimmedLines()
        #expect(lines[1].contains("val loss▲"))
        #expect(lines[2].contains("c02") && lines[3].contains("c01") && lines[4].contains("c03"))
        _ = board.handle(.char("r"))
        lines = draw(board).trimmedLines()
        #expect(lines[1].contains("val loss▼"))
        #expect(lines[2].contains("c01") && lines[3].contains("c02") && lines[4].contains("c03"))  // missing stays last
        // The selected row is highlighted and its detail shown under the table.
        _ = board.handle(.down); _ = board.handle(.down); _ = board.handle(.down)
        #expect(board.table.selectedID == "c03")
        let b = draw(board)
        #expect(b.text.contains("c03 diverged at step 12"))
        let palette = Palette(theme: .builtinDefault)
        #expect(b[10, 4].bg == palette.selected.bg)
    }

    @Test func quittingARunningSweepAsksFirstThenStopsIt() {
        let sweep = FakeSweep(Self.model())
        let board = Leaderboard(source: sweep)
        #expect(board.handle(.char("q")) == .none)
        #expect(draw(board).trimmedLines().last!.contains("q again stops it"))
        #expect(!sweep.stopped)
        _ = board.handle(.char("j"))  // any other key goes on
        #expect(board.handle(.char("q")) == .none)
        #expect(!sweep.stopped)
        #expect(board.handle(.char("q")) == .none)
        #expect(sweep.stopped)
        #expect(draw(board).trimmedLines().last!.contains("stopping the sweep"))
        // Once stopped (or finished), q quits.
        #expect(board.handle(.char("q")) == .quit)
    }

    @Test func aFinishedSweepShowsTheBestAndItsTrainLine() {
        let sweep = FakeSweep(Self.model())
        let board = Leaderboard(source: sweep)
        sweep.current = Self.model(finished: true)
        #expect(board.update())
        let text = draw(board).text
        #expect(text.contains("done · best c02"))
        #expect(text.contains("lrtop train --lr 0.01 --scheduler plateau"))
        #expect(draw(board).trimmedLines().last!.hasSuffix("q quit"))
        #expect(board.handle(.char("q")) == .quit)
        #expect(!sweep.stopped)
    }

    @Test func aTinyTerminalSaysSo() {
        let board = Leaderboard(source: FakeSweep(Self.model()))
        let b = draw(board, width: 40, height: 8)
        #expect(b.text.contains("too small: need 60x10, have 40x8"))
    }

    /// The leaderboard runs in the same loop as the dashboard (`TUIApp`): drawn on the terminal's colours, new
    /// rows drawn as they come, q q stops the sweep and quits, the terminal restored.
    @Test func itRunsInTheOneLauncherAsTheDashboardDoes() throws {
        let sweep = FakeSweep(Self.model())
        let board = Leaderboard(source: sweep)
        let backend = MemoryBackend(width: 100, height: 16, colorDepth: .none,
                                    script: [.idle(1), .key(.char("q")), .idle(1), .key(.char("q")), .idle(1),
                                             .key(.char("q"))])
        #expect(try TUIApp.run(board, options: TUIOptions(maxFPS: 0, pollMs: 0), backend: backend) == .quit)
        #expect(sweep.stopped)
        #expect(backend.restoreCount == 1)
        #expect(backend.frames.contains { $0.text.contains("q again stops it") })
        #expect(backend.frames.allSatisfy { b in b.cells.allSatisfy { $0.fg == .default && $0.bg == .default } })
    }
}
