import Testing
import Foundation
import LRLog

/// Crafted and damaged logs of issue #11's suite: readers bound what a line may hold, reject steps out of range
/// with file:line, refuse what is not a regular file, accept a byte-order mark, list a run once, and never trap.
@Suite struct BadLogTests {
    func temp() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-badlog-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static let header = #"{"type":"header","schema":1,"lrtop_version":"t","config":{},"seed":0,"start_time":"2026-01-01T00:00:00Z","groups":["default"],"steps_per_epoch":10,"total_steps":20}"#
    static func step(_ n: String) -> String {
        #"{"type":"step","step":"# + n + #","epoch":0,"lrs":[0.001],"loss":1.0,"grad_norm":1.0,"samples_per_s":1.0,"wall_time":0.1}"#
    }

    @Test func stepsOutOfRangeAreRejectedWithTheirLine() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        try [Self.header, Self.step("1"), Self.step("-9223372036854775808"), Self.step("9223372036854775807"), Self.step("2")]
            .joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let result = try RunLoader.load(url)
        #expect(result.runs[0].steps.count == 2)
        #expect(result.warnings.contains { $0.contains("run.jsonl:3") && $0.contains("out of range") }, "\(result.warnings)")
        #expect(result.warnings.contains { $0.contains("run.jsonl:4") }, "\(result.warnings)")
    }

    @Test func aHugeLineIsSkippedWithoutTakingMemory() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let lrs = Array(repeating: "0.001", count: 600_000).joined(separator: ",")
        let huge = #"{"type":"step","step":3,"epoch":0,"lrs":["# + lrs + #"],"loss":1,"grad_norm":1,"samples_per_s":1,"wall_time":1}"#
        try [Self.header, Self.step("1"), huge, Self.step("2")].joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let result = try RunLoader.load(url)
        #expect(result.runs[0].steps.count == 2)
        #expect(result.runs[0].steps.groupCount == 1)
        #expect(result.warnings.contains { $0.contains("run.jsonl:3") && $0.contains("longer than any record") }, "\(result.warnings)")
    }

    @Test func aByteOrderMarkIsAccepted() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        try Data([0xEF, 0xBB, 0xBF] + Array(([Self.header, Self.step("1")].joined(separator: "\n")).utf8)).write(to: url)
        let result = try RunLoader.load(url)
        #expect(result.runs[0].header != nil)
        #expect(result.runs[0].steps.count == 1)
    }

    @Test func aFIFOIsRefusedInsteadOfBlocking() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("run.jsonl")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        #expect { try RunLoader.load(fifo) } throws: { "\($0)".contains("is a FIFO") }
        // In a folder it is skipped, not opened.
        let result = try RunLoader.load(dir)
        #expect(result.runs.isEmpty)
    }

    @Test func aSymlinkLoopListsARunOnce() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("a")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try [Self.header, Self.step("1")].joined(separator: "\n").write(to: run.appendingPathComponent("run.jsonl"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: run.appendingPathComponent("loop").path, withDestinationPath: dir.path)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("again").path, withDestinationPath: run.path)
        let result = try RunLoader.load(dir)
        #expect(result.runs.count == 1, "\(result.runs.map(\.name))")
    }

    @Test func exportingATensorBoardImportWithExtremeStepsDoesNotTrap() throws {
        var run = RunData(name: "x", source: "x", format: .csv, groups: ["default"])
        for step in [Int.min, 0, Int.max] {
            run.append(.step(StepRecord(step: step, epoch: 0, lrs: [0.1], loss: 1, gradNorm: 1, samplesPerSec: 1, wallTime: 0)))
        }
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try? TensorBoardExport.write(run, to: dir)
    }

    @Test func aTensorBoardFileWithExtremeStepsKeepsTheRestAndSaysWhich() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("events.out.tfevents.1.host")
        let writer = try TensorBoardWriter(url: url, wallTime: 1)
        for step in [Int.min, 5, Int.max, -1, 6] { try writer.addScalar(tag: "loss", value: 1, step: step, wallTime: 1) }
        try writer.close()
        let content = try TensorBoardReader.read(at: url)
        #expect(content.scalars.first?.steps == [5, 6])
        #expect(content.warnings.filter { $0.contains("outside 0...2^53") }.count == 3, "\(content.warnings)")
    }

    @Test func aCSVWithExtremeStepsSkipsThoseRowsByLine() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.csv")
        try "step,loss\n1,0.5\n9223372036854775807,0.4\n-5,0.3\n2,0.2\n".write(to: url, atomically: true, encoding: .utf8)
        let table = try CSVReader.read(at: url)
        #expect(table.scalars.first?.steps == [1, 2])
        #expect(table.warnings.contains { $0.contains("m.csv:3") } && table.warnings.contains { $0.contains("m.csv:4") },
                "\(table.warnings)")
    }

    @Test func aCSVWithNoStepColumnNumbersItsRowsAndSaysSo() throws {
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.csv")
        // The first column is an epoch: used as the step it folded 300 rows into 3 without a word.
        let rows = (0..<300).map { "\($0 / 100),\(1.0 / Double($0 + 1))" }
        try (["epoch,loss"] + rows).joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        let table = try CSVReader.read(at: url)
        #expect(table.stepColumn == nil)
        let loss = try #require(table.scalars.first { $0.tag == "loss" })
        #expect(loss.steps == Array(0..<300))
        #expect(table.warnings.contains { $0.contains("no step column") }, "\(table.warnings)")
    }
}
