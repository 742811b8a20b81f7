import Testing
import Foundation

/// The faults of issue #11's suite: a reused run folder, a closed stdout, a hangup, a log that cannot be written,
/// a kill during a checkpoint write. Nothing recorded is lost, and a failure says which file and why.
@Suite(.serialized) struct FaultTests {
    static let spirals = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "16", "--batch-size", "64"]

    @Test func anExistingRunFolderOrLogIsNeverOverwrittenWithoutForce() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try lrtop(Self.spirals + ["--max-steps", "60", "--checkpoint-every", "20", "--run-dir", "ref"], in: dir.url).status == 0)
        let before = try Data(contentsOf: dir.url.appendingPathComponent("ref/run.jsonl"))
        let finalBefore = try Data(contentsOf: dir.url.appendingPathComponent("ref/checkpoints/final.ckpt"))

        let again = try lrtop(Self.spirals + ["--max-steps", "5", "--run-dir", "ref"], in: dir.url)
        #expect(again.status == 1)
        #expect(again.stderr.contains("ref/run.jsonl already holds a run log") && again.stderr.contains("--force"), "\(again.stderr)")
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("ref/run.jsonl")) == before)
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("ref/checkpoints/final.ckpt")) == finalBefore)

        let log = try lrtop(Self.spirals + ["--max-steps", "5", "--log", "ref/run.jsonl"], in: dir.url)
        #expect(log.status == 1 && log.stderr.contains("already holds a run log"))
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("ref/run.jsonl")) == before)

        // --force overwrites, and the old run's checkpoints do not stay mixed in with the new one's.
        let forced = try lrtop(Self.spirals + ["--max-steps", "5", "--run-dir", "ref", "--force"], in: dir.url)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(records(try readLog(dir.path("ref/run.jsonl")), type: "step").count == 5)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("ref/checkpoints")) == ["final.ckpt"])
    }

    @Test func aResumeIntoItsRunFolderAppendsAfterAnEventSayingSo() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try lrtop(Self.spirals + ["--max-steps", "60", "--checkpoint-every", "30", "--run-dir", "r"], in: dir.url).status == 0)
        let original = try String(contentsOfFile: dir.path("r/run.jsonl"), encoding: .utf8)
        let finalBefore = try Data(contentsOf: dir.url.appendingPathComponent("r/checkpoints/final.ckpt"))
        let out = try lrtop(["train", "--headless", "--resume", "r/checkpoints/step-00000030.ckpt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let text = try String(contentsOfFile: dir.path("r/run.jsonl"), encoding: .utf8)
        #expect(text.hasPrefix(original))
        let log = try readLog(dir.path("r/run.jsonl"))
        #expect(records(log, type: "header").count == 1)
        let appended = try readLogLines(text.dropFirst(original.count))
        #expect((appended.first?["text"] as? String) == "resume")
        #expect((appended.first?["message"] as? String)?.contains("continue this log") == true)
        #expect(records(appended, type: "step").map { $0["step"] as! Int } == Array(31...60))
        // The original final checkpoint is kept; the resumed run's final goes beside it.
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("r/checkpoints/final.ckpt")) == finalBefore)
        #expect(FileManager.default.fileExists(atPath: dir.path("r/checkpoints/final-2.ckpt")))
        // Replay reads the continued log as one run.
        let summary = try lrtop(["replay", "--summary", dir.path("r/run.jsonl")])
        #expect(summary.status == 0, "\(summary.stderr)")
    }

    @Test func aClosedStdoutStopsTheProgressLinesNotTheRun() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let command = ([lrtopBinary.path] + Self.spirals + ["--epochs", "3", "--progress-every", "1", "--run-dir", "p"])
            .map { "'\($0)'" }.joined(separator: " ")
        let out = try lrtop(["--version"])   // warm the binary's page cache; the pipeline below is what is tested
        #expect(out.status == 0)
        let status = try runCleanly(["/bin/bash", "-c", "cd '\(dir.url.path)' && \(command) | head -3 >/dev/null; echo ${PIPESTATUS[0]}"])
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "exit \(status)")
        let log = try readLog(dir.path("p/run.jsonl"))
        #expect(log.last?["type"] as? String == "end" && log.last?["reason"] as? String == "completed")
        #expect(records(log, type: "step").count == 3 * 93)
        #expect(FileManager.default.fileExists(atPath: dir.path("p/checkpoints/final.ckpt")))
    }

    @Test(arguments: [(SIGHUP, "SIGHUP"), (SIGTERM, "SIGTERM")])
    func aHangupEndsTheRunLikeSIGTERM(signal: Int32, name: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let process = Process()
        process.executableURL = lrtopBinary
        process.arguments = Self.spirals + ["--epochs", "1000", "--run-dir", "h"]
        process.currentDirectoryURL = dir.url
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let logPath = dir.path("h/run.jsonl")
        let deadline = Date().addingTimeInterval(60)
        while (FileProblemSize.of(logPath) ?? 0) < 4096 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + signal)
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        let end = try #require(try readLogLines(text.suffix(2000)).last)
        #expect(end["type"] as? String == "end" && end["reason"] as? String == "interrupted")
        #expect((end["message"] as? String)?.contains(name) == true)
        #expect(FileManager.default.fileExists(atPath: dir.path("h/checkpoints/final.ckpt")))
    }

    @Test func aLogThatCannotBeWrittenStopsTheRunWithAnErrorNamingItsFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // A 64 KiB file-size limit: the log fails part way, like a full disk; the small checkpoints still fit.
        let command = ([lrtopBinary.path] + Self.spirals + ["--epochs", "20", "--run-dir", "f"]).map { "'\($0)'" }.joined(separator: " ")
        let result = try runCleanly(["/bin/bash", "-c", "cd '\(dir.url.path)' && ulimit -f 64 && \(command) 2>err.txt >out.txt; echo $?"])
        #expect(result.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "exit \(result)")
        let err = try String(contentsOfFile: dir.path("err.txt"), encoding: .utf8)
        #expect(err.contains("/f/run.jsonl") && err.contains("File too large"), "\(err)")
        #expect(err.contains("the run stops"))
        #expect(err.contains("final checkpoint written to"), "\(err)")
        let out = try String(contentsOfFile: dir.path("out.txt"), encoding: .utf8)
        #expect(out.contains("failed at step"), "\(out)")
        #expect(!out.contains("completed"))
        // What the log holds is whole lines up to the failure.
        let text = try String(contentsOfFile: dir.path("f/run.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.dropLast().allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
        #expect(FileManager.default.fileExists(atPath: dir.path("f/checkpoints/final.ckpt")))
    }

    @Test func staleCheckpointTemporariesAreRemovedOnStartAndResume() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try lrtop(Self.spirals + ["--max-steps", "40", "--checkpoint-every", "20", "--run-dir", "r"], in: dir.url).status == 0)
        // What a kill -9 during a checkpoint write leaves: a temporary of a process that no longer exists.
        let stale = dir.path("r/checkpoints/.step-00000040.ckpt.tmp-999999")
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: stale))
        let out = try lrtop(["train", "--headless", "--resume", "r/checkpoints/step-00000020.ckpt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test func everyCheckpointGetsItsOwnFileAndTheCountMatchesTheDisk() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // Two checkpoints of different states at one step; the repeated `ckpt` and the risky `sched`'s automatic
        // checkpoint find the state saved already (issue #20: repeated checkpoints at one boundary are one).
        try "@5 ckpt\n@5 ckpt\n@5 lr *0.5\n@5 ckpt\n@5 sched cosine\n".write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(Self.spirals + ["--max-steps", "10", "--commands", "s.txt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path("r/checkpoints")).sorted()
        #expect(files == ["final.ckpt", "step-00000005-2.ckpt", "step-00000005.ckpt"])
        let saved = records(try readLog(dir.path("r/run.jsonl")), type: "event").filter { $0["kind"] as? String == "checkpoint" }
        #expect(saved.count == files.count)
        let paths = Set(saved.compactMap { ($0["message"] as? String)?.split(separator: "→").last?.trimmingCharacters(in: .whitespaces) })
        #expect(paths.count == files.count)
    }
}

/// The size of a file, or nil.
enum FileProblemSize {
    static func of(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    }
}

func readLogLines<S: StringProtocol>(_ text: S) throws -> [[String: Any]] {
    text.split(separator: "\n").compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}
