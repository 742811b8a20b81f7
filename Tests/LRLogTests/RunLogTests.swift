import Foundation
import LRCommand
import LRLog
import Testing

private func header(groups: [String] = ["decay", "no_decay"]) -> RunHeader {
    RunHeader(lrtopVersion: sampleHeader.lrtopVersion, config: sampleHeader.config, seed: sampleHeader.seed,
              startTime: sampleHeader.startTime, groups: groups, stepsPerEpoch: 100, totalSteps: 1000)
}

private func step(_ i: Int, loss: Double? = nil) -> StepRecord {
    StepRecord(step: i, epoch: i / 100, lrs: [1e-3 * Double(i) / 7, 3e-4], loss: loss ?? 2.5 / Double(i + 1),
               gradNorm: 0.1 * Double(i), samplesPerSec: 1234.5678 + Double(i), wallTime: 0.0123 * Double(i))
}

/// Every record type, with NaN, infinities, nil optionals and awkward strings.
private let allRecords: [RunRecord] = [
    .header(header()),
    .step(step(1)),
    .step(StepRecord(step: 2, epoch: 0, lrs: [.nan, 1e-300], loss: .nan, gradNorm: .infinity, samplesPerSec: -.infinity,
                     wallTime: Double.leastNonzeroMagnitude)),
    .eval(EvalRecord(step: 2, epoch: 0, loss: 0.6931471805599453, accuracy: 0.52475, wallTime: 1.5)),
    .event(EventRecord(step: 2, kind: .command, text: "lr 3e-4", command: .lr(group: nil, .set(3e-4)),
                       lrsBefore: [1e-3, 1e-3], lrsAfter: [3e-4, 3e-4], message: nil, wallTime: 1.75)),
    .event(EventRecord(step: 2, kind: .guardTrip, text: "guard", result: EventResult(rolledBackTo: 1),
                       lrsBefore: [3e-4], lrsAfter: [1.5e-4],
                       message: "loss is NaN at step 2: \"halved\" the LR\nnext line é 😀", wallTime: 2)),
    .event(EventRecord(step: 2, kind: .command, text: "find-lr steps=20", command: .findLR(LRRangeSettings(steps: 20)),
                       result: EventResult(subruns: ["subruns/find-lr-2"],
                                           suggestions: [.init(name: "valley", lr: 2.09e-3), .init(name: "min/10", lr: 1e-2)]),
                       lrsBefore: [3e-4], lrsAfter: [3e-4], message: "subruns/find-lr-2: 20 steps", wallTime: 2.1)),
    .eval(EvalRecord(step: 3, epoch: 0, loss: .infinity, accuracy: .nan, wallTime: 2.5)),
    .end(EndRecord(reason: .diverged, step: 3, epoch: 0, finalLoss: .nan, bestEvalLoss: 0.69, bestAccuracy: nil,
                   finalAccuracy: 0.5, wallTime: 3, message: "stopped by the guard")),
]

private func sameRecords(_ a: [RunRecord], _ b: [RunRecord]) -> Bool {
    guard a.count == b.count else { return false }
    // Compare through the encoder: NaN != NaN would fail plain ==, identical lines prove identical values.
    return zip(a, b).allSatisfy { RunLogLine.encode($0) == RunLogLine.encode($1) }
}

@Suite struct RunLogTests {
    @Test func roundTripOfEveryRecordType() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("nested/folder/run.jsonl")
        let writer = try RunLogWriter(url: url)
        for r in allRecords { try writer.write(r) }
        try writer.close()
        let read = try RunLogReader.readRecords(at: url)
        #expect(read.warnings.isEmpty)
        #expect(read.records.count == allRecords.count)
        #expect(sameRecords(read.records, allRecords))
        // Non-NaN records compare equal field by field.
        #expect(read.records[0] == allRecords[0])
        #expect(read.records[1] == allRecords[1])
        #expect(read.records[4] == allRecords[4])
        #expect(read.records[5] == allRecords[5])
        #expect(read.records[6] == allRecords[6])
        if case let .step(s) = read.records[2] {
            #expect(s.loss.isNaN && s.lrs[0].isNaN && s.lrs[1] == 1e-300 && s.gradNorm == .infinity)
            #expect(s.samplesPerSec == -.infinity && s.wallTime == Double.leastNonzeroMagnitude)
        } else {
            Issue.record("record 2 is not a step")
        }
    }

    /// A log written before events carried their command (schema 1) reads with the same typed fields: the
    /// command from its text, the outcomes from the messages that version wrote.
    @Test func anOlderLogGetsItsCommandsAndOutcomesFromItsText() throws {
        let lines = [
            #"{"type":"header","schema":1,"lrtop_version":"0.1.0","start_time":"2025-11-25T02:50:00Z","seed":0,"groups":["all"],"steps_per_epoch":10,"total_steps":100,"config":{}}"#,
            #"{"type":"event","step":5,"kind":"command","text":"PAUSE","lrs_before":[0.001],"lrs_after":[0.001],"wall_time":1}"#,
            #"{"type":"event","step":5,"kind":"error","text":"lr abc","lrs_before":[0.001],"lrs_after":[0.001],"message":"invalid LR 'abc'","wall_time":1}"#,
            #"{"type":"event","step":3,"kind":"command","text":"rollback","lrs_before":[0.001],"lrs_after":[0.001],"message":"rolled back from step 5 to step 3 (manual)","wall_time":2}"#,
            #"{"type":"event","step":3,"kind":"command","text":"find-lr steps=20","lrs_before":[0.001],"lrs_after":[0.001],"message":"subruns/find-lr-3: 20 steps, all steps taken; valley 0.00209","wall_time":3}"#,
            #"{"type":"event","step":2,"kind":"guard","text":"guard","lrs_before":[0.001],"lrs_after":[0.0005],"message":"loss is nan at step 4; rolled back to step 2 and halved the LR","wall_time":4}"#,
            #"{"type":"event","step":2,"kind":"guard","text":"guard","lrs_before":[0.001],"lrs_after":[0.001],"message":"loss is nan at step 3; paused: lower the LR","wall_time":5}"#,
        ]
        let events = try lines.dropFirst().map { line -> EventRecord in
            guard case let .event(e) = try RunLogLine.decode(line) else { throw LogError("not an event") }
            return e
        }
        #expect(events.map(\.command) == [.pause, nil, .rollback, .findLR(LRRangeSettings(steps: 20)), nil, nil])
        #expect(events.map(\.result) == [nil, nil, EventResult(rolledBackTo: 3), EventResult(subruns: ["subruns/find-lr-3"]),
                                         EventResult(rolledBackTo: 2), EventResult(paused: true)])
        // Texts and messages stay as they were written.
        #expect(events.map(\.text) == ["PAUSE", "lr abc", "rollback", "find-lr steps=20", "guard", "guard"])
    }

    @Test func linesAreTheDocumentedJSON() throws {
        let line = RunLogLine.encode(.step(StepRecord(step: 7, epoch: 1, lrs: [0.001], loss: .nan, gradNorm: 1.5,
                                                      samplesPerSec: 100, wallTime: 0.25)))
        #expect(line == #"{"type":"step","step":7,"epoch":1,"lrs":[0.001],"loss":"NaN","grad_norm":1.5,"samples_per_sec":100.0,"wall_time":0.25}"#)
        // Foundation reads our lines with the documented NaN strategy, and we read Foundation's.
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity",
                                                                        negativeInfinity: "-Infinity", nan: "NaN")
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        for record in allRecords {
            let ours = RunLogLine.encode(record)
            let viaFoundation = try decoder.decode(RunRecord.self, from: Data(ours.utf8))
            #expect(RunLogLine.encode(viaFoundation) == ours)
            let theirs = String(decoding: try encoder.encode(record), as: UTF8.self)
            #expect(RunLogLine.encode(try RunLogLine.decode(theirs)) == ours)
        }
    }

    @Test func documentedExamplesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/runlog.md"), encoding: .utf8)
        var inJSON = false
        var types: Set<String> = []
        for line in doc.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inJSON = line == "```json"; continue }
            guard inJSON else { continue }
            let record = try RunLogLine.decode(String(line))
            types.insert(record.typeName)
            // Our encoder writes the documented examples byte for byte.
            #expect(RunLogLine.encode(record) == line)
        }
        #expect(types == ["header", "step", "eval", "metrics", "event", "end"])
    }

    @Test func subRunHeaderRoundTripsAndAnUnknownKindIsRefused() throws {
        var h = header()
        h.subrun = SubRun(kind: .findLR, label: "find-lr@40", fromStep: 40, parent: "../../log.jsonl")
        let line = RunLogLine.encode(.header(h))
        #expect(line.hasSuffix(#""subrun":{"kind":"find-lr","label":"find-lr@40","from_step":40,"parent":"../../log.jsonl"}}"#))
        #expect(try RunLogLine.decode(line) == .header(h))
        h.subrun = SubRun(kind: .trial, label: "t3")
        #expect(try RunLogLine.decode(RunLogLine.encode(.header(h))) == .header(h))
        let unknown = line.replacingOccurrences(of: #""kind":"find-lr""#, with: #""kind":"dream""#)
        #expect(throws: (any Error).self) { try RunLogLine.decode(unknown) }
    }

    @Test func doublesRoundTripExactly() throws {
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [0, -0.0, 1, 0.1, 1e-5, 2.7339599464326623e-09, 0.0005412896727361663, 1e22, 1e23,
                                Double.leastNonzeroMagnitude, 2.2250738585072014e-308, .greatestFiniteMagnitude,
                                123456789012345680, 9007199254740992, 0.30000000000000004]
        for _ in 0..<20_000 {
            values.append(Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF))
            values.append(Double.random(in: 0..<1, using: &rng) * pow(10, Double(Int.random(in: -30...30, using: &rng))))
            values.append(Double(Float.random(in: 0..<10, using: &rng)))
        }
        for chunk in stride(from: 0, to: values.count, by: 4) {
            let lrs = Array(values[chunk..<min(chunk + 4, values.count)])
            let r = StepRecord(step: chunk, epoch: 0, lrs: lrs, loss: lrs[0], gradNorm: -lrs[0], samplesPerSec: 1,
                               wallTime: 2)
            let back = try RunLogLine.decode(RunLogLine.encode(.step(r)))
            #expect(back == .step(r), "\(lrs)")
        }
    }

    @Test func decimalTextParsesLikeTheStandardLibrary() throws {
        // Long mantissas, exact ties between two Doubles, tiny and huge exponents: the reader's fast paths
        // must round exactly as strtod does.
        var texts = ["9007199254740993", "9007199254740995", "9007199254740993.0000000001", "1.00000000000000011102230246251565404236316680908203125",
                     "0.1000000000000000055511151231257827021181583404541015625", "2.2250738585072011e-308", "1e-400", "1e400",
                     "123456789012345678901234567890", "0.000000000000000000000000000000123", "4.9406564584124654e-324",
                     "1.7976931348623157e308", "1.7976931348623159e308", "-0", "0e10", "3.4028235e38", "1E5", "1e+05"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let digits = Int.random(in: 1...19, using: &rng)
            var mantissa = String(Int.random(in: 1...9, using: &rng))
            for _ in 1..<digits { mantissa += String(Int.random(in: 0...9, using: &rng)) }
            let point = Int.random(in: 0...digits, using: &rng)
            let decimal = point == digits ? mantissa : String(mantissa.prefix(point)) + "." + String(mantissa.dropFirst(point))
            let exp = Int.random(in: -40...40, using: &rng)
            texts.append(decimal.hasPrefix(".") ? "0" + decimal + "e\(exp)" : decimal + "e\(exp)")
        }
        for text in texts {
            let line = #"{"type":"step","step":1,"epoch":0,"lrs":[\#(text)],"loss":\#(text),"grad_norm":0,"samples_per_sec":0,"wall_time":0}"#
            guard case let .step(s) = try RunLogLine.decode(line) else { Issue.record("\(text)"); continue }
            let want = try #require(Double(text))
            #expect(s.loss.bitPattern == want.bitPattern && s.lrs[0].bitPattern == want.bitPattern, "\(text): \(s.loss) vs \(want)")
        }
    }

    @Test func truncatedLastLineIsAWarning() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let full = allRecords.prefix(3).map(RunLogLine.encode).joined(separator: "\n") + "\n"
        try write(full + #"{"type":"step","step":4,"epoch":0,"lrs":[0.001],"lo"#, to: url)
        let read = try RunLogReader.readRecords(at: url)
        #expect(read.records.count == 3)
        #expect(read.warnings == ["\(url.path):4: truncated last line (the run may still be writing)"])
        // A complete last line without its newline is simply read.
        try write(full + RunLogLine.encode(.step(step(4))), to: url)
        let complete = try RunLogReader.readRecords(at: url)
        #expect(complete.records.count == 4 && complete.warnings.isEmpty)
    }

    @Test func garbageLineInTheMiddleIsSkipped() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let lines = [RunLogLine.encode(.header(header())), RunLogLine.encode(.step(step(1))),
                     "this is not json {", RunLogLine.encode(.step(step(2))),
                     #"{"type":"gpu_stats","temp":71}"#, "", #"{"type":"step","epoch":0}"#,
                     RunLogLine.encode(.step(step(3)))]
        try write(lines.joined(separator: "\n") + "\n", to: url)
        let read = try RunLogReader.readRecords(at: url)
        #expect(read.records.count == 4)
        #expect(read.warnings.count == 3)
        #expect(read.warnings[0].hasPrefix("\(url.path):3: not JSON"))
        #expect(read.warnings[1] == "\(url.path):5: unknown record type \"gpu_stats\", skipped")
        #expect(read.warnings[2] == "\(url.path):7: field \"step\": missing, skipped")
        let run = try RunLogReader.readRun(at: url)
        #expect(run.steps.step == [1, 2, 3])
        #expect(run.warnings == read.warnings)
    }

    @Test func emptyFileIsAnEmptyRun() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        try write("", to: url)
        let read = try RunLogReader.readRecords(at: url)
        #expect(read.records.isEmpty)
        #expect(read.warnings == ["\(url.path): empty run log"])
        let run = try RunLogReader.readRun(at: url)
        #expect(run.steps.isEmpty && run.header == nil)
    }

    @Test func notARunLogIsAnError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for text in ["step,loss\n1,2.0\n", RunLogLine.encode(.step(step(1))) + "\n", "\u{0}\u{1}binary"] {
            let url = dir.appendingPathComponent("not-a-log.txt")
            try write(text, to: url)
            #expect(throws: LogError("\(url.path): not an lrtop run log (first line is not a header record)")) {
                try RunLogReader.readRecords(at: url)
            }
        }
    }

    @Test func keysInAnyOrderAndUnknownKeysAreRead() throws {
        let line = #"{ "loss": 1.5, "extra": {"a": [1, "}"]}, "lrs": [ 0.1 , 0.2 ], "type": "step", "wall_time": 3, "step": 9, "epoch": 2, "grad_norm": null, "samples_per_sec": NaN }"#
        let r = try RunLogLine.decode(line)
        guard case let .step(s) = r else { Issue.record("not a step"); return }
        #expect(s.step == 9 && s.epoch == 2 && s.lrs == [0.1, 0.2] && s.loss == 1.5 && s.wallTime == 3)
        #expect(s.gradNorm.isNaN && s.samplesPerSec.isNaN)
    }

    @Test func columnsHoldWhatWasWritten() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let writer = try RunLogWriter(url: url)
        try writer.write(header: header())
        for i in 1...500 {
            try writer.write(step: step(i))
            if i % 100 == 0 { try writer.write(eval: EvalRecord(step: i, epoch: i / 100, loss: 1, accuracy: 0.5, wallTime: 1)) }
        }
        try writer.write(event: EventRecord(step: 250, kind: .command, text: "lr 1e-4", lrsBefore: [1], lrsAfter: [2], wallTime: 3))
        try writer.write(end: EndRecord(reason: .completed, step: 500, epoch: 5, finalLoss: 0.1, bestEvalLoss: nil,
                                        bestAccuracy: 0.5, finalAccuracy: 0.5, wallTime: 9))
        try writer.close()
        let run = try RunLogReader.readRun(at: url)
        #expect(run.name == "run" && run.format == .runLog)
        #expect(run.groups == ["decay", "no_decay"])
        #expect(run.header == header())
        #expect(run.steps.count == 500 && run.evals.count == 5 && run.events.count == 1 && run.end?.reason == .completed)
        #expect(run.startUnixTime == 1_764_039_000)  // 2025-11-25T02:50:00Z
        for i in [0, 1, 250, 499] {
            let want = step(i + 1)
            let got = run.steps.record(at: i)
            #expect(got.step == want.step && got.epoch == want.epoch && got.lrs == want.lrs && got.wallTime == want.wallTime)
            #expect(Float(got.loss) == Float(want.loss) && Float(got.gradNorm) == Float(want.gradNorm))
        }
        #expect(run.steps.lastIndex(ofStep: 250) == 249)
    }

    @Test func writerFlushesOnTimeAndOnRequest() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.jsonl")
        let writer = try RunLogWriter(url: url, flushInterval: 0.2)
        try writer.write(header: header())
        try writer.write(step: step(1))
        #expect(try Data(contentsOf: url).isEmpty)  // still buffered
        try writer.flush()
        #expect(try RunLogReader.readRecords(at: url).records.count == 2)
        try writer.write(step: step(2))
        Thread.sleep(forTimeInterval: 0.25)
        try writer.write(step: step(3))  // finds the last flush older than the interval
        #expect(try RunLogReader.readRecords(at: url).records.count == 4)
        try writer.close()
        try writer.close()
        #expect(throws: LogError.self) { try writer.write(step: step(4)) }
        // Appending continues a log.
        let again = try RunLogWriter(url: url, append: true)
        try again.write(step: step(4))
        try again.close()
        #expect(try RunLogReader.readRecords(at: url).records.count == 5)
    }

    @Test func followerSeesAppendedLinesAndHoldsBackPartialOnes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("live.jsonl")
        let follower = RunLogFollower(url: url)
        #expect(try follower.poll().isEmpty)  // not there yet
        try write(RunLogLine.encode(.header(header())) + "\n", to: url)
        let first = try follower.poll()
        #expect(first.count == 1 && first[0].typeName == "header")
        #expect(try follower.poll().isEmpty)

        let line2 = RunLogLine.encode(.step(step(1)))
        let line3 = RunLogLine.encode(.step(step(2)))
        try append(line2 + "\n" + line3.prefix(20), to: url)
        #expect(try follower.poll() == [.step(step(1))])
        try append(String(line3.dropFirst(20)), to: url)
        #expect(try follower.poll().isEmpty)  // complete JSON, but no newline yet
        try append("\n" + "garbage\n", to: url)
        #expect(try follower.poll() == [.step(step(2))])
        #expect(follower.warnings.count == 1 && follower.warnings[0].hasPrefix("\(url.path):4: not JSON"))

        // A new run replacing the file is read from its start.
        try write(RunLogLine.encode(.header(header(groups: ["all"]))) + "\n", to: url)
        let replaced = try follower.poll()
        #expect(replaced.count == 1 && replaced.first == .header(header(groups: ["all"])))

        // Records a follower returns build the same run as reading the file.
        var live = RunData(name: "live", source: url.path, format: .runLog)
        for r in replaced { live.append(r) }
        #expect(live.groups == ["all"])
    }
}
