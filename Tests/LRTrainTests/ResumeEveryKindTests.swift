import Testing
import Foundation
import LRTrain
import LRLog
import LROptim
import LRCommand

/// Resume and rollback put a run back bit for bit, whatever schedules its LR: every kind of the spec language,
/// sequences of them, and both scheduler intervals. A run of 40 steps checkpoints at 20; a second run resumes
/// from that file, a third rolls back to it at step 30; both must then repeat the first run's steps 21...40.
@Suite struct ResumeEveryKindTests {
    /// One spec per kind, sized to the 40-step run so each one is mid-schedule at step 20.
    static let specPerKind: [String: String] = [
        "constant": "constant",
        "constantlr": "constantlr:factor=0.5,total_iters=30",
        "step": "step:step_size=7,gamma=0.5",
        "multistep": "multistep:milestones=10/25,gamma=0.5",
        "exp": "exp:gamma=0.95",
        "cosine": "cosine",
        "warm_restarts": "warm_restarts:T_0=8,T_mult=2",
        "linear": "linear:total_iters=30",
        "warmup": "warmup:steps=30",
        "poly": "poly:power=2",
        "onecycle": "onecycle",
        "cyclic": "cyclic:max_lr=0.3,step_size_up=7",
        "plateau": "plateau:patience=0,factor=0.5",
    ]
    static let sequences = [
        "warmup:steps=10 -> cosine",
        "warmup:steps=25 -> cosine",
        "constantlr:factor=0.5,total_iters=10 -> step:step_size=5,gamma=0.5",
        "linear:total_iters=25 -> exp:gamma=0.9",
        "warmup:steps=5 -> @15 onecycle -> @30 cyclic:max_lr=0.3,step_size_up=4",
    ]

    @Test func everyKindOfTheSpecLanguageHasACase() {
        #expect(Set(SchedulerFactory.names) == Set(Self.specPerKind.keys))
    }

    /// Every kind, the sequences, and the default schedule (nil: the guide's warmup + cosine sized to the run).
    static var allSpecs: [String?] { specPerKind.keys.sorted().map { specPerKind[$0]! } + sequences + [nil] }

    @Test(arguments: allSpecs)
    func resumeAndRollbackRepeatTheRunBitForBit(spec: String?) throws {
        try check(spec: spec, interval: "step")
    }

    @Test(arguments: ["warmup:steps=3 -> cosine", "onecycle", "constantlr:factor=0.5,total_iters=3", "plateau:patience=0"])
    func perEpochSchedulesToo(spec: String?) throws {
        try check(spec: spec, interval: "epoch")
    }

    func check(spec: String?, interval: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-resume-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        func config() -> TrainConfig {
            var c = TrainConfig()
            c.data = "synthetic:spirals"; c.batchSize = interval == "epoch" ? 512 : 64; c.hidden = [16]; c.dropout = 0.1
            c.epochs = 100; c.maxSteps = 40; c.optimizer = "adamw"; c.lr = 0.05; c.scheduler = spec
            c.schedulerInterval = SchedulerInterval(rawValue: interval)!; c.checkpointEvery = 20; c.evalEvery = 5
            return c
        }
        func run(_ name: String, resume: URL? = nil, script: String? = nil) throws -> [RunRecord] {
            var o = RunOptions()
            o.runDirectory = dir.appendingPathComponent(name)
            o.resumeCheckpoint = resume
            if let script { o.script = try CommandScript.parse(script, name: "test") }
            let box = RecordBox()
            o.observer = { box.append($0) }
            let end = try Trainer(config: config(), options: o).run()
            #expect(end.reason == .completed, "\(spec): \(name) ended \(end.reason) \(end.message ?? "")")
            return box.records
        }
        let full = try run("full").steps
        let tail = full.filter { $0.step > 20 }
        #expect(tail.count == 20)
        let ckpt = try #require(try FileManager.default.contentsOfDirectory(
            at: dir.appendingPathComponent("full/checkpoints"), includingPropertiesForKeys: nil)
            .first { $0.lastPathComponent.hasPrefix("step-00000020") })

        let resumed = try run("resumed", resume: ckpt).steps
        #expect(resumed.map(\.step) == tail.map(\.step), "\(spec)")
        #expect(resumed.map(\.lrs) == tail.map(\.lrs), "\(spec) (\(interval)): LRs after resume differ")
        #expect(resumed.map(\.loss.bitPattern) == tail.map(\.loss.bitPattern), "\(spec) (\(interval)): losses after resume differ")

        let rolled = try run("rolled", script: "@30 rollback")
        let afterRollback = rolled.steps.dropFirst(30)
        #expect(afterRollback.map(\.step) == tail.map(\.step), "\(spec)")
        #expect(afterRollback.map(\.lrs) == tail.map(\.lrs), "\(spec) (\(interval)): LRs after rollback differ")
        #expect(afterRollback.map(\.loss.bitPattern) == tail.map(\.loss.bitPattern), "\(spec) (\(interval)): losses after rollback differ")
    }
}
