import Foundation
import Testing
import LRBridge

/// What `lrtop attach` makes of its argument, and which run it picks without one.
@Suite(.serialized)
struct RunFinderTests {
    @Test func aRunFolderItsLogAndItsSocketAllLeadToTheSocket() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let server = try FakeBridgeServer()
        defer { server.stop() }
        try writeRunLog(dir.file("runs/a/run.jsonl"), socket: server.path)
        let expected = RunFinder.Target(socket: server.path, log: URL(fileURLWithPath: dir.file("runs/a/run.jsonl")))
        #expect(try RunFinder.target(for: dir.file("runs/a")) == expected)
        #expect(try RunFinder.target(for: dir.file("runs/a/run.jsonl")) == expected)
        #expect(try RunFinder.target(for: server.path) == RunFinder.Target(socket: server.path, log: nil))
        // A folder of runs: the newest live one.
        #expect(try RunFinder.target(for: dir.file("runs")) == expected)
    }

    @Test func argumentsThatCannotBeAttachedToSayWhatToGiveInstead() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        #expect(throws: BridgeError(dir.file("nope") + ": no such file or folder (give a run folder, its run.jsonl, or the socket the run printed)")) {
            try RunFinder.target(for: dir.file("nope"))
        }
        try writeRunLog(dir.file("swift/run.jsonl"), socket: nil)
        let log = dir.file("swift/run.jsonl")
        #expect(throws: BridgeError(log + ": its header names no socket, so the run cannot be steered (was it written by lrtop.attach?); follow it read-only with 'lrtop watch \(log)'")) {
            try RunFinder.target(for: log)
        }
        try "garbage\n".write(toFile: dir.file("bad.jsonl"), atomically: true, encoding: .utf8)
        #expect(throws: BridgeError(dir.file("bad.jsonl") + ": not an lrtop run log (its first line is not a header record)")) {
            try RunFinder.target(for: dir.file("bad.jsonl"))
        }
        _ = FileManager.default.createFile(atPath: dir.file("empty.jsonl"), contents: Data())
        #expect(throws: BridgeError(dir.file("empty.jsonl") + ": empty so far (no header yet); wait for the run to start, or give its socket")) {
            try RunFinder.target(for: dir.file("empty.jsonl"))
        }
        try FileManager.default.createDirectory(atPath: dir.file("emptydir"), withIntermediateDirectories: true)
        #expect(throws: BridgeError(dir.file("emptydir") + ": no run.jsonl in this folder, and no runs under it")) {
            try RunFinder.target(for: dir.file("emptydir"))
        }
    }

    @Test func withoutATargetTheNewestLiveRunIsChosenAndEndedRunsAreNamed() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let runs = URL(fileURLWithPath: dir.file("runs"))
        #expect(RunFinder.noLiveRun([], under: "runs").description.hasPrefix("no runs under runs to attach to"))

        let server = try FakeBridgeServer()
        defer { server.stop() }
        try writeRunLog(dir.file("runs/live/run.jsonl"), socket: server.path)
        try writeRunLog(dir.file("runs/ended/run.jsonl"), socket: "/tmp/lrtop-gone.sock", end: "completed")
        try writeRunLog(dir.file("runs/swift/run.jsonl"), socket: nil)
        // The ended run was written last.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)],
                                              ofItemAtPath: dir.file("runs/live/run.jsonl"))
        let found = RunFinder.runs(under: runs)
        #expect(found.map(\.name) == ["ended", "live"])
        #expect(found.map(\.endReason) == ["completed", nil])
        #expect(RunFinder.live(found).map(\.name) == ["live"])

        server.stop()
        #expect(RunFinder.live(found).isEmpty)
        #expect(RunFinder.noLiveRun(found, under: "runs").description
                == "no live run under runs: the newest, ended, has ended (completed); replay it with 'lrtop replay \(dir.file("runs/ended/run.jsonl"))'")
    }
}
