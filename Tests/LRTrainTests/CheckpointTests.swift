import Testing
import Foundation
import LRTrain
import LRLog

@Suite struct CheckpointTests {
    func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-ckpt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func archiveRoundTripsBitExactAndRejectsDamage() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.ckpt")
        let values: [Float] = [1, -0.0, .pi, 1e-38, .greatestFiniteMagnitude, .nan]
        try CheckpointArchive.write(.init(metadata: Data("{\"x\":1}".utf8), tensors: ["w": values, "b": []]), to: url)
        let back = try CheckpointArchive.read(from: url)
        #expect(back.metadata == Data("{\"x\":1}".utf8))
        #expect(back.tensors["w"]!.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(back.tensors["b"] == [])
        // No temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.ckpt"])

        var bytes = try Data(contentsOf: url)
        let truncated = dir.appendingPathComponent("cut.ckpt")
        try bytes.prefix(bytes.count - 10).write(to: truncated)
        #expect { try CheckpointArchive.read(from: truncated) } throws: { "\($0)".contains("incomplete") }
        bytes[20] ^= 0xFF
        let flipped = dir.appendingPathComponent("flip.ckpt")
        try bytes.write(to: flipped)
        #expect { try CheckpointArchive.read(from: flipped) } throws: { "\($0)".contains("corrupt") }
        let garbage = dir.appendingPathComponent("g.ckpt")
        try Data("hello world, this is not a checkpoint at all".utf8).write(to: garbage)
        #expect { try CheckpointArchive.read(from: garbage) } throws: { "\($0)".contains("not an lrtop checkpoint") }
    }

    @Test func resumeGivesTheSameLossesBitForBit() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        func config() -> TrainConfig {
            var c = TrainConfig()
            c.data = "synthetic:spirals"; c.batchSize = 32; c.hidden = [32]; c.dropout = 0.1
            c.epochs = 2; c.optimizer = "adamw"; c.lr = 3e-3; c.scheduler = "cosine"; c.checkpointEvery = 100
            c.evalEvery = 50
            return c
        }
        // The run that never stops.
        var full = RunOptions()
        full.runDirectory = dir.appendingPathComponent("full")
        let fullBox = RecordBox()
        full.observer = { fullBox.append($0) }
        let a = try Trainer(config: config(), options: full)
        let endA = a.run()
        #expect(endA.reason == .completed)

        // A second run resumed from the first's step-100 checkpoint, with an intervention applied before it.
        let ckpt = dir.appendingPathComponent("full/checkpoints/step-00000100.ckpt")
        #expect(FileManager.default.fileExists(atPath: ckpt.path))
        var resumed = RunOptions()
        resumed.runDirectory = dir.appendingPathComponent("resumed")
        resumed.resumeCheckpoint = ckpt
        let resumedBox = RecordBox()
        resumed.observer = { resumedBox.append($0) }
        let b = try Trainer(config: TrainConfig(), options: resumed)
        let endB = b.run()
        let fullTail = fullBox.records.steps.filter { $0.step > 100 }
        let resumedSteps = resumedBox.records.steps
        #expect(resumedSteps.first?.step == 101)
        #expect(resumedSteps.map(\.loss) == fullTail.map(\.loss))
        #expect(resumedSteps.map(\.lrs) == fullTail.map(\.lrs))
        #expect(endB.finalAccuracy == endA.finalAccuracy)
    }

    @Test func initStartsFromWeightsWithAFreshOptimizer() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = TrainConfig()
        c.data = "synthetic:spirals"; c.batchSize = 32; c.hidden = [32]; c.epochs = 3; c.optimizer = "adamw"; c.lr = 1e-2
        c.scheduler = "constant"
        var o = RunOptions()
        o.runDirectory = dir.appendingPathComponent("base")
        let endBase = try Trainer(config: c, options: o).run()

        var fine = c
        fine.epochs = 1
        fine.lr = 1e-3
        fine.groups = ["fc1.*:lr=0"]
        var o2 = RunOptions()
        o2.runDirectory = dir.appendingPathComponent("fine")
        o2.initCheckpoint = dir.appendingPathComponent("base/checkpoints/final.ckpt")
        let box = RecordBox()
        o2.observer = { box.append($0) }
        let t = try Trainer(config: fine, options: o2)
        let endFine = t.run()
        // It starts where the base run ended (same accuracy at its first evaluation, far above chance) ...
        #expect((endFine.finalAccuracy ?? 0) > 0.9 * (endBase.finalAccuracy ?? 1))
        // ... with a fresh schedule at step 1 and the frozen group at LR 0.
        let first = try #require(box.records.steps.first)
        #expect(first.step == 1)
        #expect(first.lrs.contains(0) && first.lrs.contains(1e-3))
    }

    @Test func aMissingOrWrongCheckpointIsAOneLineError() throws {
        var o = RunOptions()
        o.writeFiles = false
        o.resumeCheckpoint = URL(fileURLWithPath: "/nonexistent/x.ckpt")
        #expect { try Trainer(config: TrainConfig(), options: o) } throws: { "\($0)" == "/nonexistent/x.ckpt: no such checkpoint file" }
    }
}
