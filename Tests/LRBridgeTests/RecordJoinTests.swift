import Foundation
import Testing
@testable import LRBridge
import LRLog

/// The attached run's records joined from its log and its pushed stream (docs/bridge.md "Records, pushed"): every line
/// once, in line order, whichever source brings it first.
@Suite struct RecordJoinTests {
    func step(_ s: Int) -> RunRecord {
        .step(StepRecord(step: s, epoch: 0, lrs: [0.1], loss: 1, gradNorm: .nan, samplesPerSec: .nan, wallTime: Double(s)))
    }
    func lines(_ taken: [RecordJoin.Arrival]) -> [Int] { taken.map(\.line) }

    @Test func historyThenStreamEachLineOnceInOrder() {
        var join = RecordJoin()
        let history = (0..<5).map { (line: $0, record: step($0)) }
        #expect(lines(join.takeFile(history, linesRead: 5)) == [0, 1, 2, 3, 4])
        #expect(join.takePushed(line: 3, step(3)).isEmpty, "a line the file gave already is not taken twice")
        #expect(lines(join.takePushed(line: 5, step(5))) == [5])
        #expect(join.takePushed(line: 7, step(7)).isEmpty, "7 waits for 6")
        #expect(join.hasHole && join.waiting == 1)
        #expect(lines(join.takePushed(line: 6, step(6))) == [6, 7])
        #expect(!join.hasHole && join.next == 8)
    }

    @Test func aGapIsFilledFromTheFileAndWhatWaitedFollows() {
        var join = RecordJoin()
        _ = join.takeFile([(0, step(0))], linesRead: 1)
        join.takeGap(to: 4)
        #expect(join.hasHole)
        #expect(join.takePushed(line: 4, step(4)).isEmpty)
        // The file has caught up to line 3, and its line 2 was malformed (no record): skipped, not waited for.
        let read = join.takeFile([(1, step(1)), (3, step(3))], linesRead: 4)
        #expect(lines(read) == [1, 3, 4])
        #expect(!join.hasHole)
        // The file read later again from its offset: nothing twice.
        #expect(join.takeFile([(4, step(4))], linesRead: 5).isEmpty)
    }

    @Test func stepsThatRepeatAfterARollbackKeepTheirLineOrder() {
        var join = RecordJoin()
        _ = join.takeFile([(0, step(0)), (1, step(1)), (2, step(2))], linesRead: 3)
        // After a rollback to step 1 the run logs steps 2, 3 again: new lines, pushed out of order.
        _ = join.takePushed(line: 4, step(3))
        let taken = join.takePushed(line: 3, step(2))
        #expect(lines(taken) == [3, 4])
        let steps = taken.compactMap { if case .step(let s) = $0.record { s.step } else { nil } }
        #expect(steps == [2, 3])
    }

    @Test func aPushedRecordIsReadByTheLogsParserAndABadOneBecomesAGap() throws {
        let line = #"{"type":"record","line":12,"record":{"type":"metrics","step":3,"wall_time":0.5,"metrics":{"acc":0.25}}}"#
        guard case .record(12, .metrics(let m)) = try ServerMessage.parse(Array(line.utf8)) else {
            Issue.record("not a record: \(line)"); return
        }
        #expect(m.step == 3 && m.metrics.count == 1)
        let bad = #"{"type":"record","line":5,"record":{"type":"step","step":"x"}}"#
        guard case .gap(5, 6, let reason?) = try ServerMessage.parse(Array(bad.utf8)) else {
            Issue.record("not a gap: \(bad)"); return
        }
        #expect(reason.contains("line 5"))
        #expect(try ServerMessage.parse(Array(#"{"type":"gap","from_line":3,"to_line":9}"#.utf8)) == .gap(from: 3, to: 9, reason: nil))
        #expect(throws: BridgeError.self) { try ServerMessage.parse(Array(#"{"type":"gap","from_line":9,"to_line":3}"#.utf8)) }
        #expect(throws: BridgeError.self) { try ServerMessage.parse(Array(#"{"type":"gap","from_line":-1,"to_line":3}"#.utf8)) }
    }

    /// A run that pushes: attach reads the log's history, subscribes from the line after it, and takes the stream,
    /// reading the file again only for a line the stream skipped.
    @Test func attachSubscribesAfterTheHistoryAndJoinsTheStream() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let log = dir.file("run.jsonl")
        try writeRunLog(log, socket: "x", steps: 12)
        let server = try FakeBridgeServer(logPath: log, greet: false)
        defer { server.stop() }
        let connection = try BridgeConnection(path: server.path)
        server.send(FakeBridgeServer.helloLine.replacingOccurrences(of: "LOG", with: log)
            .replacingOccurrences(of: #""world_size":1}"#, with: #""world_size":1,"records":true}"#))
        #expect(try connection.waitForGreeting().records)
        let source = AttachSource(connection: connection, logURL: URL(fileURLWithPath: log), pollInterval: 0)
        var arrived: [AttachSource.Arrival] = []
        #expect(eventually { arrived += source.drainNumbered(); return server.lines.contains { $0.contains("subscribe") } })
        #expect(server.lines.last == #"{"type":"subscribe","from_line":13}"#)
        #expect(arrived.map(\.line) == Array(0...12) && arrived.allSatisfy { !$0.pushed })
        func pushed(_ line: Int, step: Int) -> String {
            #"{"type":"record","line":\#(line),"record":{"type":"step","step":\#(step),"epoch":0,"lrs":[0.001,0.002],"loss":0.5,"grad_norm":1.0,"samples_per_sec":1000,"wall_time":2.0}}"#
        }
        server.send(pushed(12, step: 12))  // a duplicate of the history's last line
        server.send(pushed(13, step: 12))
        server.send(#"{"type":"gap","from_line":14,"to_line":15}"#)  // line 14 only in the file
        server.send(pushed(15, step: 14))
        #expect(eventually { arrived += source.drainNumbered(); return arrived.count >= 14 })
        #expect(arrived.map(\.line) == Array(0...13), "15 waits for 14")
        // The run's file: its line 13 (which came pushed already) and line 14.
        try appendLine(log, #"{"type":"step","step":12,"epoch":0,"lrs":[0.001,0.002],"loss":0.5,"grad_norm":1.0,"samples_per_sec":1000,"wall_time":1.2}"#)
        try appendLine(log, #"{"type":"step","step":13,"epoch":0,"lrs":[0.001,0.002],"loss":0.5,"grad_norm":1.0,"samples_per_sec":1000,"wall_time":1.3}"#)
        #expect(eventually { arrived += source.drainNumbered(); return arrived.count >= 16 })
        #expect(arrived.map(\.line) == Array(0...15))
        #expect(arrived.map(\.pushed) == Array(repeating: false, count: 13) + [true, false, true])
        #expect(source.status().step == 14)
    }
}
