import Testing
import Foundation
import LRTrain
import LRCommand
import LRLog

/// The LR range test (`find-lr`): it sweeps, logs a sub-run, suggests, and leaves the run exactly as it was.
@Suite struct RangeTestTests {
    func runFolder(_ name: String = #function) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("lrtop-findlr-\(getpid())-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Every step record's numbers as bit patterns, so "equal" means bit for bit.
    func bits(_ records: [RunRecord]) -> [[UInt64]] {
        records.steps.map { [UInt64($0.step), $0.loss.bitPattern, $0.gradNorm.bitPattern] + $0.lrs.map(\.bitPattern) }
    }

    /// Two runs, one with a find-lr in the middle: every step after it is the same to the bit (weights, AdamW's
    /// moments, the warmup + cosine schedule, the data order and dropout's RNG all restored).
    @Test(arguments: [
        (optimizer: "adamw", scheduler: nil as String?, accum: 1, clip: nil as Double?),
        (optimizer: "sgd:momentum=0.9,nesterov=true", scheduler: "onecycle:max_lr=0.2", accum: 2, clip: 1.0),
    ])
    func theRunContinuesBitForBitAsIfNoSweepHadHappened(_ c: (optimizer: String, scheduler: String?, accum: Int, clip: Double?)) throws {
        func configure(_ config: inout TrainConfig) {
            config.dropout = 0.2
            config.accumSteps = c.accum
            config.clipGradNorm = c.clip
        }
        let plain = try trainSpirals(steps: 60, optimizer: c.optimizer, lr: 0.01, scheduler: c.scheduler, configure: configure)
        let swept = try trainSpirals(steps: 60, optimizer: c.optimizer, lr: 0.01, scheduler: c.scheduler,
                                     script: "@25 find-lr steps=40\n@40 findlr", configure: configure)
        let events = swept.records.events.filter { $0.text.hasPrefix("find") }
        #expect(events.count == 2 && events.allSatisfy { $0.kind == .command }, "\(events)")
        #expect(events.first?.message?.contains("valley") == true, "\(events.first?.message ?? "")")
        // The sweeps really trained: the model moved during them (the trainer's last sweep has a curve).
        let last = try #require(swept.trainer.lastRangeTest)
        #expect(last.fromStep == 40 && last.curve.count > 20 && last.curve.stop != nil)
        #expect(bits(swept.records) == bits(plain.records))
        #expect(swept.end.finalLoss?.bitPattern == plain.end.finalLoss?.bitPattern)
        #expect(swept.records.events.allSatisfy { $0.lrsBefore == $0.lrsAfter })
    }

    @Test func theSweepIsASubRunBesideTheRunLogAndTheEventNamesIt() throws {
        let dir = try runFolder()
        let run = try trainSpirals(steps: 30, optimizer: "sgd:momentum=0.9", lr: 1e-3, scheduler: "constant",
                                   script: "@10 find-lr\n@10 find-lr start=1e-3 end=1e5 steps=30", options: {
            $0.runDirectory = dir
            $0.writeFiles = true
        })
        #expect(run.end.reason == .completed)
        let first = dir.appendingPathComponent("subruns/find-lr-10/log.jsonl")
        let second = dir.appendingPathComponent("subruns/find-lr-10-2/log.jsonl")
        let records = try RunLogReader.readRecords(at: first).records
        guard case .header(let h)? = records.first else { Issue.record("no header"); return }
        #expect(h.subrun == SubRun(kind: .findLR, label: "find-lr", fromStep: 10, parent: "../../run.jsonl"))
        #expect(h.totalSteps == 100 && h.config["find_lr_start"] == "1e-07")
        let steps = records.steps
        #expect(steps.first?.lrs == [1e-7] && steps.first?.step == 1)
        // LRs grow exponentially: each step's LR is 10^(8/100) times the last.
        for (a, b) in zip(steps, steps.dropFirst()) { #expect(abs(b.lrs[0] / a.lrs[0] - pow(10, 0.08)) < 1e-9) }
        guard case .end(let end)? = records.last else { Issue.record("no end record"); return }
        let curve = try #require(LRRangeCurve(records: records))
        #expect(end.message == curve.summary && end.step == steps.count)
        #expect(curve.stop != nil && curve.count == steps.count)
        let valley = try #require(curve.suggestions.valley)
        #expect(valley > 1e-6 && valley < 1)

        let events = run.records.events.filter { $0.text.hasPrefix("find-lr") }
        let secondRecords = try RunLogReader.readRecords(at: second).records
        let secondCurve = try #require(LRRangeCurve(records: secondRecords))
        let messages: [String?] = ["subruns/find-lr-10: " + curve.summary, "subruns/find-lr-10-2: " + secondCurve.summary]
        #expect(events.map(\.message) == messages)
        guard case .header(let h2)? = secondRecords.first else { return }
        #expect(h2.subrun?.label == "find-lr start=0.001 end=100000.0 steps=30" && h2.totalSteps == 30)
        // Up to LR 1e5 the loss explodes: the sweep stops before its 30 steps (fastai's stop_div, or a NaN loss).
        #expect(secondCurve.stop == .diverged || secondCurve.stop == .nonFinite)
        #expect(secondRecords.steps.count == secondCurve.count && secondCurve.count < 30)
        // The main log holds the run's own steps only.
        let main = try RunLogReader.readRecords(at: dir.appendingPathComponent("run.jsonl")).records
        #expect(main.steps.map(\.step) == Array(1...30))
    }

    @Test func aBadFindLRInAScriptStopsTheRunBeforeItStarts() throws {
        #expect {
            _ = try trainSpirals(steps: 5, script: "@3 find-lr start=1 end=1e-3")
        } throws: { "\($0)".contains("test-script:1: 'find-lr' needs start < end") }
    }

    @Test func aBadFindLRAtThePromptIsAnErrorEventAndChangesNothing() throws {
        let box = RecordBox()
        let run = try trainSpirals(steps: 5, options: { $0.observer = { box.append($0) } })
        run.trainer.apply(.findLR(LRRangeSettings(steps: 3)))
        let e = try #require(box.records.events.last)
        #expect(e.kind == .error && e.text == "find-lr steps=3" && e.message?.contains("from 6 to 10000") == true)
        #expect(run.trainer.lastRangeTest == nil)
    }
}
