import Foundation
import Testing
import LRLog
import LRTUI

/// A fork seen by the dashboard: the branches' sub-run logs beside the run's log become overlays when the `fork`
/// event arrives, the branches table shows their results and how the fork ended, and `b` prompts a fork (or the
/// adoption of the best branch while the run waits).
@Suite struct BranchViewTests {
    /// A run folder whose run forked at step 100 into two branches of 20 steps, written as the trainer writes them.
    static func forkedRunFolder(finished: Bool = true) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-branchview-\(UUID().uuidString.prefix(8))")
        for (k, lr, loss, acc) in [(1, 3e-3, 0.30, 0.91), (2, 1e-4, 0.55, 0.83)] {
            let writer = try RunLogWriter(url: dir.appendingPathComponent("subruns/fork-100-\(k)/log.jsonl"))
            try writer.write(header: RunHeader(lrtopVersion: "test", config: [:], seed: 1, startTime: "2026-01-01T00:00:00Z",
                                               groups: ["body", "head"], stepsPerEpoch: 100, totalSteps: 1000,
                                               subrun: SubRun(kind: .branch, label: "lr \(lr)", fromStep: 100,
                                                              parent: "../../run.jsonl")))
            for s in 101...120 {
                try writer.write(step: StepRecord(step: s, epoch: 1, lrs: [lr, lr], loss: loss, gradNorm: 1,
                                                  samplesPerSec: 6400, wallTime: 1 + Double(s - 100) * 0.01))
            }
            guard finished else { try writer.close(); continue }
            try writer.write(eval: EvalRecord(step: 120, epoch: 1, loss: loss + 0.05, accuracy: acc, wallTime: 1.2))
            try writer.write(end: EndRecord(reason: .completed, step: 120, epoch: 1, finalLoss: loss, bestEvalLoss: nil,
                                            bestAccuracy: nil, finalAccuracy: acc, wallTime: 1.2, message: nil))
            try writer.close()
        }
        return dir
    }

    /// A live dashboard on a run that forked at step 100 (its records and the fork event queued), its source, and
    /// the run folder to remove.
    static func forkedDashboard(finished: Bool) throws -> (Dashboard, FakeSource, URL) {
        let dir = try forkedRunFolder(finished: finished)
        var status = FakeSource.status(at: 100)
        status.logPath = dir.appendingPathComponent("run.jsonl").path
        let source = FakeSource(status: status)
        source.pending = FakeSource.records(steps: 100) + [forkEvent()]
        return (Dashboard(source: source), source, dir)
    }

    static func forkEvent() -> RunRecord {
        .event(EventRecord(step: 100, kind: .command, text: "fork lr=3e-3,1e-4 steps=20", lrsBefore: [1e-3], lrsAfter: [1e-3],
                           message: "2 branches of 20 steps from step 100", wallTime: 1))
    }

    @Test func aForkEventBringsTheBranchesInAsOverlaysAndATable() throws {
        let dir = try Self.forkedRunFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var status = FakeSource.status(at: 100)
        status.logPath = dir.appendingPathComponent("run.jsonl").path
        let source = FakeSource(status: status)
        source.pending = FakeSource.records(steps: 100)
        let d = Dashboard(source: source)
        d.update()
        #expect(d.runs.count == 1 && d.branchRows.isEmpty)

        source.pending = [Self.forkEvent()]
        source.current.state = .paused
        source.current.message = "branches done: adopt K or drop"
        d.update()
        #expect(d.runs.count == 3)
        // The overlays' sources read their logs on their own clock: wait until both have been read.
        waitUntil { d.update(); return d.runs.dropFirst().allSatisfy { $0.end != nil } }
        #expect(d.runs.map(\.name) == ["mnist-mlp", "b1@100 lr 0.003", "b2@100 lr 0.0001"])
        let rows = d.branchRows
        #expect(rows.map(\.number) == [1, 2])
        #expect(rows.map(\.state) == ["done", "done"])
        #expect(rows.map(\.step) == [120, 120] && rows.map(\.endStep) == [120, 120])
        #expect(rows[0].valLoss == 0.35 && rows[0].valAccuracy == 0.91)
        let screen = d.render(width: 140, height: 44).text
        #expect(screen.contains("branches from step 100"))
        // Which loss it is, said in the table's frame (issue #21 item 8).
        #expect(screen.contains("loss smooth 0.6"), "\(screen)")
        #expect(screen.contains("lr 0.003") && screen.contains("91.0%") && screen.contains("83.0%"))
        // The header counts the run's steps: it waits at the fork while the branches went to 120.
        #expect(screen.contains("step 100/1,000"))
        // The smallest terminal still shows the table, configurations cut before results.
        let small = d.render(width: 80, height: 24).text
        #expect(small.contains("branches from step 100") && small.contains("91.0%") && small.contains("done"), "\(small)")

        // While the run waits, `b` offers the branch with the lowest validation loss.
        _ = d.handle(.char("b"))
        guard case .prompt(let p) = d.overlay else { Issue.record("no prompt"); return }
        #expect(p.text == "adopt 1")
        _ = d.handle(.enter)
        #expect(source.sent.last == "adopt 1")
        source.pending = [.event(EventRecord(step: 120, kind: .command, text: "adopt 1", lrsBefore: [1e-3], lrsAfter: [3e-3],
                                             message: "continuing from branch 1", wallTime: 2))]
        d.update()
        #expect(d.branchRows.map(\.state) == ["adopted", "done"])
        #expect(d.render(width: 140, height: 44).text.contains("adopted ✓"))

        // `B` sorts the table by its columns in turn.
        _ = d.handle(.char("B"))
        #expect(d.branchTable.sortColumn == 0)
    }

    @Test func aWatchedLogThatForkedShowsItsBranches() throws {
        let dir = try Self.forkedRunFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("run.jsonl")
        let writer = try RunLogWriter(url: log)
        for r in FakeSource.records(steps: 100) + [Self.forkEvent()] { try writer.write(r) }
        try writer.close()
        let d = Dashboard(source: WatchSource(url: log, pollInterval: 0))
        waitUntil { d.update(); return d.runs.count == 3 && d.runs.dropFirst().allSatisfy { $0.end != nil } }
        #expect(d.keyMode == .watch)
        #expect(d.branchRows.map(\.label) == ["lr 0.003", "lr 0.0001"])
    }

    @Test func bPromptsAForkAroundTheCurrentLR() {
        let source = FakeSource(status: FakeSource.status(at: 100))
        source.pending = FakeSource.records(steps: 100)
        let d = Dashboard(source: source)
        d.update()
        _ = d.handle(.char("b"))
        guard case .prompt(let p) = d.overlay else { Issue.record("no prompt"); return }
        let lr = FakeSource.lr(step: 100, group: 0)
        #expect(lr == 0.00095)
        #expect(p.text == "fork lr=2.85e-3,9.5e-4,3.17e-4 steps=100")
    }

    @Test func whileBranchesTrainBOffersToDropThem() throws {
        let (d, _, dir) = try Self.forkedDashboard(finished: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        waitUntil { d.update(); return d.branchRows.count == 2 }
        #expect(d.branchRows.map(\.state) == ["training", "training"])
        _ = d.handle(.char("b"))
        guard case .prompt(let p) = d.overlay else { Issue.record("no prompt"); return }
        #expect(p.text == "drop")
    }

    @Test func aDroppedForkSaysSo() throws {
        let (d, source, dir) = try Self.forkedDashboard(finished: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        waitUntil { d.update(); return d.runs.count == 3 && d.runs.dropFirst().allSatisfy { $0.end != nil } }
        source.pending = [.event(EventRecord(step: 100, kind: .command, text: "drop", lrsBefore: [1e-3], lrsAfter: [1e-3],
                                             message: "back at step 100 as before the fork", wallTime: 2))]
        d.update()
        #expect(d.branchRows.map(\.state) == ["dropped", "dropped"])
    }
}

func waitUntil(seconds: Double = 10, _ done: () -> Bool) {
    let deadline = Date().addingTimeInterval(seconds)
    while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    #expect(done(), "timed out")
}
