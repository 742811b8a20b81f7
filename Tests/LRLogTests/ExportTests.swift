import Foundation
import LRLog
import Testing

/// An lrtop run log with two groups, a NaN loss, evals (one at a step without a step record) and events.
private func makeLog(in dir: URL) throws -> URL {
    let url = dir.appendingPathComponent("runs/exp1.jsonl")
    let writer = try RunLogWriter(url: url)
    try writer.write(header: RunHeader(lrtopVersion: "0.1", config: [:], seed: 7, startTime: "2025-01-02T03:04:05.5Z",
                                       groups: ["decay", "no_decay"], stepsPerEpoch: 50, totalSteps: 200))
    try writer.write(eval: EvalRecord(step: 0, epoch: 0, loss: 2.31, accuracy: 0.1, wallTime: 0.01))
    for i in 1...200 {
        let lr = 1e-3 * (1 + cos(Double.pi * Double(i) / 200)) / 2
        try writer.write(step: StepRecord(step: i, epoch: (i - 1) / 50, lrs: [lr, lr * 0.1],
                                          loss: i == 120 ? .nan : 2.3 * exp(-Double(i) / 80) + 0.01 * sin(Double(i)),
                                          gradNorm: 1 / Double(i), samplesPerSec: 5000 + Double(i) / 3,
                                          wallTime: 0.013 * Double(i)))
        if i % 50 == 0 {
            try writer.write(eval: EvalRecord(step: i, epoch: (i - 1) / 50, loss: 1 / Double(i), accuracy: 0.5 + Double(i) / 1000,
                                              wallTime: 0.013 * Double(i) + 0.001))
        }
    }
    try writer.write(event: EventRecord(step: 100, kind: .command, text: "lr 1e-4", lrsBefore: [1e-3, 1e-4],
                                        lrsAfter: [1e-4, 1e-5], wallTime: 1.3))
    try writer.close()
    return url
}

@Suite struct ExportTests {
    @Test func runLogToTensorBoardAndBack() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try RunLogReader.readRun(at: try makeLog(in: dir))
        let file = try TensorBoardExport.write(original, to: dir.appendingPathComponent("tb"))
        #expect(file.lastPathComponent.hasPrefix("events.out.tfevents.1735787045."))
        let content = try TensorBoardReader.read(at: file)
        #expect(content.scalars.map(\.tag) == ["val/loss", "val/acc", "train/loss", "train/lr", "train/lr/decay",
                                               "train/lr/no_decay", "train/grad_norm", "train/samples_per_sec"])
        let back = try #require(try RunLoader.load(dir.appendingPathComponent("tb")).runs.first)
        #expect(back.name == "tb" && back.format == .tensorBoard)
        #expect(back.groups == ["decay", "no_decay"])
        #expect(back.mapping.lrs == ["train/lr/decay", "train/lr/no_decay"])
        #expect(back.startUnixTime == original.startUnixTime)
        let a = original.steps, b = back.steps
        #expect(b.step == a.step)
        for i in 0..<a.count {
            #expect(sameFloat32(Double(b.loss[i]), Double(a.loss[i])), "loss \(i)")
            #expect(sameFloat32(b.lrs[0][i], a.lrs[0][i]) && sameFloat32(b.lrs[1][i], a.lrs[1][i]), "lr \(i)")
            #expect(b.gradNorm[i] == a.gradNorm[i] && b.samplesPerSec[i] == a.samplesPerSec[i], "\(i)")
            #expect(abs(b.wallTime[i] - a.wallTime[i]) < 1e-5, "wall \(i)")
        }
        #expect(b.loss[119].isNaN)
        #expect(back.evals.map(\.step) == original.evals.map(\.step))
        for (x, y) in zip(back.evals, original.evals) {
            #expect(sameFloat32(x.loss, y.loss) && sameFloat32(x.accuracy, y.accuracy))
        }
    }

    @Test func runLogToCSVAndBack() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try RunLogReader.readRun(at: try makeLog(in: dir))
        let url = dir.appendingPathComponent("export/exp1.csv")
        try CSVExport.write(original, to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "step,epoch,lr/decay,lr/no_decay,loss,grad_norm,samples_per_sec,wall_time,val_loss,val_acc")
        #expect(lines[1] == "0,0,,,,,,,2.31,0.1")  // the eval before any step has a row of its own
        #expect(lines.count == 1 + 201 + 1)
        let back = try CSVReader.readRun(at: url)
        #expect(back.warnings.isEmpty)
        #expect(back.groups == ["decay", "no_decay"])
        // Step 0 exists only for the eval: drop it before comparing columns.
        let b = back.steps, a = original.steps
        #expect(b.step == [0] + a.step)
        for i in 0..<a.count {
            #expect(b.lrs[0][i + 1] == a.lrs[0][i] && b.lrs[1][i + 1] == a.lrs[1][i])
            #expect(b.loss[i + 1].bitPattern == a.loss[i].bitPattern || (b.loss[i + 1].isNaN && a.loss[i].isNaN))
            #expect(b.gradNorm[i + 1] == a.gradNorm[i] && b.samplesPerSec[i + 1] == a.samplesPerSec[i])
            #expect(b.wallTime[i + 1] == a.wallTime[i] && b.epoch[i + 1] == a.epoch[i])
        }
        #expect(back.evals.map(\.step) == original.evals.map(\.step))
        #expect(back.evals.map(\.loss) == original.evals.map(\.loss))
        #expect(back.evals.map(\.accuracy) == original.evals.map(\.accuracy))
    }

    @Test func loaderDetectsFormatsAndFolders() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = try makeLog(in: dir)
        let plain = dir.appendingPathComponent("renamed.log")
        try FileManager.default.copyItem(at: log, to: plain)
        #expect(RunLoader.detect(plain) == .runLog)
        #expect(RunLoader.detect(fixturesDir.appendingPathComponent("lightning_csv/run/version_0/metrics.csv")) == .csv)
        let tbCopy = dir.appendingPathComponent("no-name")
        try FileManager.default.copyItem(at: fixturesDir.appendingPathComponent("tensorboard/tbx/events.out.tfevents.1795574350.vm"),
                                         to: tbCopy)
        #expect(RunLoader.detect(tbCopy) == .tensorBoard)
        let junk = dir.appendingPathComponent("junk.bin")
        try Data([0, 1, 2, 3, 255]).write(to: junk)
        #expect(throws: LogError.self) { try RunLoader.load(junk) }

        let all = try RunLoader.load(fixturesDir)
        #expect(all.warnings.isEmpty, "\(all.warnings)")
        #expect(all.runs.map(\.name) == ["lightning_csv/run/version_0", "tensorboard/tbx", "tensorboard/torch_simple",
                                         "tensorboard/torch_tensor"])
        let simple = all.runs[2]
        #expect(simple.mapping.loss == "train/loss" && simple.mapping.lrs == ["train/lr"] && simple.mapping.evalAccuracy == "val/acc")
        #expect(simple.steps.count == 1000 && simple.evals.count == 10)
        #expect(all.runs[1].mapping.loss == "loss" && all.runs[1].mapping.lrs == ["lr"])
        // Both scalar encodings give the same numbers.
        let (oldStyle, newStyle) = (all.runs[2], all.runs[3])
        #expect(oldStyle.steps.step == newStyle.steps.step && oldStyle.steps.loss == newStyle.steps.loss)
        #expect(oldStyle.steps.lrs == newStyle.steps.lrs && oldStyle.steps.wallTime == newStyle.steps.wallTime)
        #expect(oldStyle.evals.map(\.accuracy) == newStyle.evals.map(\.accuracy))
        #expect(oldStyle.evals.map(\.step) == [99, 199, 299, 399, 499, 599, 699, 799, 899, 999])

        // A folder with a run log and a broken file: the run is read, the problem reported.
        try write("garbage\n", to: dir.appendingPathComponent("runs/broken.jsonl"))
        let mixed = try RunLoader.load(dir.appendingPathComponent("runs"))
        #expect(mixed.runs.map(\.name) == ["exp1"])
        #expect(mixed.warnings == ["\(dir.appendingPathComponent("runs/broken.jsonl").path): not an lrtop run log (first line is not a header record)"])
    }

    @Test func tagMappingGuesses() {
        let m = TagMapping.guess(tags: ["epoch", "Train/Loss", "lr-AdamW/pg1", "lr-AdamW/pg2", "val_loss", "val/acc",
                                        "grad_norm", "hp/metric"])
        #expect(m.loss == "Train/Loss" && m.lrs == ["lr-AdamW/pg1", "lr-AdamW/pg2"] && m.evalLoss == "val_loss")
        #expect(m.evalAccuracy == "val/acc" && m.gradNorm == "grad_norm" && m.epoch == "epoch")
        #expect(TagMapping.groupName(forLRTag: "lr-AdamW/pg2") == "AdamW/pg2")
        #expect(TagMapping.guess(tags: ["learning_rate", "train_loss", "accuracy"]) ==
                TagMapping(loss: "train_loss", lrs: ["learning_rate"], evalAccuracy: "accuracy"))
        #expect(TagMapping.guess(tags: ["train/lr", "train/lr/a", "train/lr/b", "loss"]).lrs == ["train/lr/a", "train/lr/b"])
    }

    @Test func explicitMappingOverridesTheGuess() throws {
        let url = fixturesDir.appendingPathComponent("tensorboard/torch_simple/events.out.tfevents.1795574350.vm.5499.0")
        var mapping = TagMapping(loss: "val/acc", lrs: ["train/loss"])
        var run = try TensorBoardReader.readRun(files: [url], name: "x", source: url.path, mapping: mapping)
        #expect(run.steps.count == 1000 && run.steps.loss.filter { !$0.isNaN }.count == 10)
        #expect(run.groups == ["train/loss"])
        mapping = TagMapping.guess(tags: run.tags)
        run.applyMapping(mapping)
        #expect(run.mapping.loss == "train/loss" && run.steps.count == 1000)
    }
}
