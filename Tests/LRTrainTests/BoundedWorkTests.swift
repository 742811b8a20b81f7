import Testing
import Foundation
import LRTrain
import LRLog
import LRCommand

/// Issue #20 items 13 and 14 on the Swift trainer: a flood of commands costs each step boundary a bounded amount
/// of work (counted, not timed), repeated checkpoints at one boundary are one file, and the rollback guard stops
/// rolling back after a few rollbacks in a row.
@Suite struct BoundedWorkTests {
    func runDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-bounded-\(UUID().uuidString.prefix(8))")
    }

    @Test func aFloodOfCommandsIsAppliedAFewPerBoundaryAndCheckpointsCoalesce() throws {
        let dir = runDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try trainSpirals(steps: 100, options: {
            $0.writeFiles = true
            $0.runDirectory = dir
        }, before: { channel in
            for _ in 0..<300 { channel.send(.checkpoint) }
            for _ in 0..<2_000 { channel.send(.lr(group: nil, .scale(1))) }
        })
        let commands = run.records.events.filter { $0.kind == .command }
        // Everything was applied, in order, and no boundary applied more than its share.
        #expect(commands.count == 2_300)
        #expect(commands.prefix(300).allSatisfy { $0.text == "ckpt" } && commands.dropFirst(300).allSatisfy { $0.text == "lr *1" })
        let perStep = Dictionary(grouping: commands, by: \.step).mapValues(\.count)
        #expect(perStep.values.max() == 32, "\(perStep)")
        #expect(run.end.reason == .completed && run.records.steps.count == 100)
        // 300 `ckpt` over 10 boundaries: one file each, the repeats at a boundary answered from it.
        let written = run.records.events.filter { $0.kind == .checkpoint && $0.text == "manual" }
        #expect(written.count == 10)
        #expect(commands.prefix(300).filter { $0.message?.contains("not written again") == true }.count == 290)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("checkpoints").path)
        #expect(files.count == 11, "\(files.sorted())")    // and final.ckpt
    }

    @Test func commandsBeyondTheQueueLimitOrTheRunsEndAreCountedNotLost() throws {
        var ids: [Int] = []
        let run = try trainSpirals(steps: 3, before: { channel in
            for _ in 0..<(TrainerChannel.inboxLimit + 50) { ids.append(channel.send(.lr(group: nil, .scale(1)))) }
        })
        let errors = run.records.events.filter { $0.kind == .error && $0.text == "commands" }
        #expect(errors.map(\.message) == ["50 commands refused: 10000 were already waiting for the trainer"])
        let applied = run.records.events.filter { $0.kind == .command }.count
        #expect(applied <= 4 * 32)
        let left = try #require(run.records.events.first { $0.kind == .info && $0.text == "commands" })
        #expect(left.message == "\(TrainerChannel.inboxLimit - applied) commands sent were not applied: the run ended first")
        // Every command is answered by its id, once: the refused ones with the event that counted them, those the
        // run ended before with the note that says so.
        let replies = run.trainer.channel.takeReplies()
        #expect(replies.map(\.id).sorted() == ids)
        let answer = Dictionary(uniqueKeysWithValues: replies.map { ($0.id, $0.event) })
        #expect(ids.suffix(50).allSatisfy { answer[$0] == errors.first })
        #expect(ids.prefix(applied).allSatisfy { answer[$0]?.kind == .command })
        #expect(ids.dropFirst(applied).prefix(TrainerChannel.inboxLimit - applied).allSatisfy { answer[$0] == left })
    }

    @Test func theRollbackGuardPausesAfterThreeRollbacksInARowAndSaysWhy() throws {
        var config = TrainConfig()
        config.data = "synthetic:spirals"; config.batchSize = 32; config.hidden = [32]; config.maxSteps = 10_000
        config.optimizer = "sgd"; config.lr = 50; config.scheduler = "constant"; config.checkpointEvery = 1
        config.guardAction = .rollback
        var opts = RunOptions()
        opts.writeFiles = false; opts.headless = false; opts.publishRecords = true
        let trainer = try Trainer(config: config, options: opts)
        let thread = Thread { trainer.run() }
        thread.start()
        var waited = 0
        while trainer.channel.status.phase != .paused && waited < 1000 { Thread.sleep(forTimeInterval: 0.01); waited += 1 }
        let status = trainer.channel.status
        #expect(status.phase == .paused)
        #expect(status.message?.contains("3 rollbacks in a row (the LR halved each time, now 6.25)") == true, "\(status.message ?? "")")
        #expect(status.message?.contains("rolling back again would not help") == true)
        trainer.channel.send(.stop)
        while !thread.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        let trips = trainer.channel.drain().events.filter { $0.kind == .guardTrip }
        #expect(trips.count == 4)
        #expect(trips.last?.message?.hasSuffix("then resume; paused") == true, "\(trips.last?.message ?? "")")
    }
}
