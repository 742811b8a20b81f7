import Foundation
import Testing
import LRLog

@Suite struct FindLRSubRunLoadTests {
    /// `lrtop replay RUN_DIR` loads the run, not its find-lr sweeps as overlaid runs (the panel draws those).
    @Test func aRunFoldersFindLRSweepsAreNotLoadedAsRuns() throws {
        let dir = try temporaryDirectory()
        let header = RunHeader(lrtopVersion: "t", config: [:], seed: 1, startTime: "", groups: ["all"], stepsPerEpoch: 10,
                               totalSteps: 20)
        func step(_ n: Int, _ lr: Double) -> RunRecord {
            .step(StepRecord(step: n, epoch: 0, lrs: [lr], loss: 1, gradNorm: 1, samplesPerSec: 1, wallTime: 0))
        }
        try write([RunRecord.header(header), step(1, 1e-3), step(2, 1e-3)].map { RunLogLine.encode($0) + "\n" }.joined(),
                  to: dir.appendingPathComponent("run.jsonl"))
        var sub = header
        sub.subrun = SubRun(kind: .findLR, label: "find-lr", fromStep: 2, parent: "../../run.jsonl")
        let subDir = dir.appendingPathComponent("subruns/find-lr-2")
        try FileManager.default.createDirectory(at: subDir, withIntermediateDirectories: true)
        try write([RunRecord.header(sub), step(1, 1e-7)].map { RunLogLine.encode($0) + "\n" }.joined(),
                  to: subDir.appendingPathComponent("log.jsonl"))
        let loaded = try RunLoader.load(dir)
        // Named by its folder (a `run.jsonl` says nothing about the run: issue #21 item 6).
        #expect(loaded.runs.map(\.name) == [dir.lastPathComponent])
        // The sweep alone still replays.
        #expect(try RunLoader.load(dir.appendingPathComponent("subruns")).runs.count == 1)
    }
}
