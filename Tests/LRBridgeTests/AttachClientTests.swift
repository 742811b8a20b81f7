import Foundation
import Testing
import LRLog
import LRBridge
import LRTUI
import LRTrain
import LRCommand
import LRLog
import LROptim

/// The attach client against a fake bridge server: what it sends, what it shows, and how it copes with a server
/// that refuses, misbehaves or vanishes.
@Suite(.serialized)
struct AttachClientTests {
    /// A run log, a fake server for it, and a client attached to both; `shown` collects the key-bar replies.
    final class Attached {
        let dir: TempFolder
        let log: String
        let server: FakeBridgeServer
        let source: AttachSource
        var shown: [(text: String, isError: Bool)] = []

        init(steps: Int = 3,
             reply: @escaping @Sendable (Int, String) -> [String] = { id, _ in [#"{"type":"ack","id":\#(id),"ok":true}"#] }) throws {
            dir = try TempFolder()
            log = dir.file("run.jsonl")
            try writeRunLog(log, socket: "x", steps: steps)
            server = try FakeBridgeServer(logPath: log, reply: reply)
            let connection = try BridgeConnection(path: server.path)
            _ = try connection.waitForGreeting()
            source = AttachSource(connection: connection, logURL: URL(fileURLWithPath: log),
                                  pollInterval: 0)
        }

        /// Reads what the run sent: its answers (as the key bar words them) and the source's warnings into `shown`.
        func pump() {
            _ = source.drain()
            shown += source.takeReplies().map { (Dashboard.answerText($0, groups: ["body", "head"]), $0.outcome != .applied) }
            shown += source.takeWarnings().map { ($0, true) }
        }

        /// Sends a command typed as text, parsed once as the prompt parses it.
        @discardableResult
        func send(_ text: String) throws -> Int { try source.send(CommandParser.parse(text), text: text) }

        deinit {
            server.stop()
            dir.remove()
        }
    }

    @Test func greetingAndStatusShowTheRunAsTheServerReportsIt() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let log = dir.file("run/run.jsonl")
        try writeRunLog(log, socket: "x", steps: 12)
        let server = try FakeBridgeServer(logPath: log)
        defer { server.stop() }
        let connection = try BridgeConnection(path: server.path)
        let hello = try connection.waitForGreeting()
        #expect(hello == BridgeHello(run: "fake-run", log: log, pid: 4242, framework: "plain", worldSize: 1))
        let source = AttachSource(connection: connection, logURL: URL(fileURLWithPath: hello.log), pollInterval: 0)
        source.catalog = { rest, perEpoch in [SchedulerKind(name: "cosine \(rest) \(perEpoch)", summary: "", parameters: [])] }
        #expect(source.logURL.path == log)
        var records = 0
        #expect(eventually { records += source.drain().count; return source.status().scheduler == "cosine T_max=200" })
        #expect(records == 13)      // the whole run so far: header and 12 steps
        let s = source.status()
        #expect(s.title == "fake-run")
        #expect(s.state == .running)
        #expect(s.step == 12)
        #expect(s.totalSteps == 200)
        #expect(s.groups.map(\.name) == ["body", "head"])
        #expect(s.groups.map(\.lr) == [0.001, 0.002])
        // The s menu sized to the rest of the run: 200 planned, 12 taken, 100 an epoch (from the log's header).
        #expect(source.schedulerKinds().map(\.name) == ["cosine 188 100"])
        #expect(s.details.contains { $0.key == "process" && $0.value.contains("pid 4242") })
        #expect(s.details.contains { $0.key == "checkpoints" && $0.value == "1" })
        // The client says hello first.
        #expect(eventually { server.lines.first?.contains(#""type":"hello""#) == true })
    }

    @Test func aCommandIsSentOnceAndItsResultIsShown() throws {
        let run = try Attached() { id, text in [
            #"{"type":"ack","id":\#(id),"ok":true}"#,
            #"{"type":"result","id":\#(id),"ok":true,"step":13,"message":"\#(text): all groups 1.00e-03 -> 1.00e-04"}"#,
        ] }
        let (server, source) = (run.server, run.source)
        #expect(try run.send("lr 1e-4") == 1)
        #expect(eventually { run.pump(); return source.replies.first?.outcome != .queued })
        #expect(source.replies == [AttachSource.Reply(id: 1, command: "lr 1e-4",
                                                      outcome: .applied(step: 13, message: "all groups 1.00e-03 -> 1.00e-04"))])
        #expect(run.shown.count == 1)
        // The bridge's message repeats the command: said once.
        #expect(run.shown.first?.0 == "✓ lr 1e-4: all groups 1.00e-03 -> 1.00e-04 (at step 13)")
        #expect(run.shown.first?.1 == false)
        let commands = server.lines.filter { $0.contains(#""type":"command""#) }
        #expect(commands == [#"{"type":"command","id":1,"text":"lr 1e-4"}"#])
    }

    /// Issue #21 item 10: the bridge's typed answer (protocol D) is worded by the one formatter a run trained here
    /// uses, every token named: the groups by name, the step as "at step", the bridge's message as the note.
    @Test func aTypedAnswerReadsAsTheSameCommandDoesLive() throws {
        let run = try Attached() { id, text in [
            #"{"type":"ack","id":\#(id),"ok":true}"#,
            #"{"type":"result","id":\#(id),"ok":true,"step":13,"command":{"verb":"lr","change":"scale","value":2},"lrs_before":[0.001,0.002],"lrs_after":[0.002,0.004],"result":{},"message":""}"#,
        ] }
        try run.send("lr *2")
        #expect(eventually { run.pump(); return run.shown.count == 1 })
        let live = Dashboard.answerText(CommandReply(id: 1, event: EventRecord(
            step: 13, kind: .command, text: "lr *2", command: .lr(group: nil, .scale(2)), lrsBefore: [0.001, 0.002],
            lrsAfter: [0.002, 0.004], wallTime: 1)), groups: ["body", "head"])
        #expect(run.shown.first?.0 == live)
        #expect(live == "✓ lr *2: lr body 1.00e-3→2.00e-3, head 2.00e-3→4.00e-3 (at step 13)")
        #expect(!live.contains("+1"))
    }

    /// Issue #21 items 12 and 9: a paused run says why (the status's `reason`), a find-lr sweep says that it sweeps
    /// and how far (`find_lr`), never "no new records"; item 5: `epoch_base` reaches the header's numbering.
    @Test func theStatusSaysWhyTheRunWaitsAndHowItNumbersEpochs() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        let dashboard = Dashboard(source: source)
        #expect(eventually { dashboard.update(); return dashboard.status.state == .running })
        server.send(#"{"type":"status","state":"paused","step":12,"epoch":0,"total_steps":200,"lr":[0.001,0.002],"groups":["body","head"],"reason":"guard: loss 8.1 > 10x its mean at step 12","epoch_base":1,"epoch_step":7}"#)
        #expect(eventually { dashboard.update(); return dashboard.status.message?.hasPrefix("guard: loss 8.1") == true })
        let lines = dashboard.render(width: 120, height: 40).lines()
        #expect(lines[0].contains("paused · guard: loss 8.1"), "\(lines[0])")
        #expect(lines.last?.contains("resume (guard: loss 8.1") == true, "\(lines.last ?? "")")
        // 12 steps of 100 a step: epoch 0, which the script calls 1, of 1…2.
        #expect(lines[0].contains("ep 1 of 1…2"), "\(lines[0])")
        // The in-epoch count is the loader's (epoch_step), not step - epoch × steps per epoch.
        #expect(lines.contains { $0.contains("· ep 1 7/100") }, "\(lines.joined(separator: "\n"))")
        server.send(#"{"type":"status","state":"paused","step":12,"epoch":0,"total_steps":200,"lr":[0.001,0.002],"groups":["body","head"],"find_lr":{"step":23,"steps":100,"subrun":"subruns/find-lr-12"}}"#)
        #expect(eventually { dashboard.update(); return dashboard.status.message?.hasPrefix("find-lr sweeping") == true })
        let text = dashboard.render(width: 120, height: 40).lines().joined(separator: "\n")
        #expect(text.contains("find-lr sweeping 23/100 → subruns/find-lr-12"))
        #expect(!text.contains("no new records"))
    }

    @Test func aTypoIsRejectedAtThePromptAndNeverSent() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        let dashboard = Dashboard(source: source)
        #expect(eventually { dashboard.update(); return dashboard.status.state == .running })
        func type(_ text: String) -> String? {
            _ = dashboard.handle(.char(":"))
            for c in text { _ = dashboard.handle(.char(c)) }
            _ = dashboard.handle(.enter)
            guard case .prompt(let p) = dashboard.overlay else { return nil }
            _ = dashboard.handle(.escape)
            return p.error
        }
        // A spec is checked by the scheduler factory before it is sent (issue #21 item 13), as `lrtop attach` does.
        source.checkSchedule = { spec, left, perEpoch in
            do {
                _ = try SchedulerFactory.validate(spec: spec, context: ScheduleContext(totalSteps: left, stepsPerEpoch: max(1, perEpoch)))
                return nil
            } catch { return "\(error)" }
        }
        #expect(type("sched cosin")?.contains("unknown scheduler 'cosin'") == true)
        #expect(type("lr abc")?.hasPrefix("invalid LR 'abc'") == true)
        #expect(type("paws")?.contains("unknown command 'paws'") == true)
        #expect(type("pause") == nil)
        #expect(eventually { _ = source.drain(); return server.lines.count == 2 })
        #expect(server.lines.last == #"{"type":"command","id":1,"text":"pause"}"#)
    }

    @Test func aCommandTheRunRefusesOrCannotApplyLooksRejected() throws {
        let run = try Attached() { id, text in
            if text.hasPrefix("sched") {
                return [#"{"type":"ack","id":\#(id),"ok":false,"error":"unknown scheduler 'cosin': valid kinds are cosine, step"}"#]
            }
            return [#"{"type":"ack","id":\#(id),"ok":true}"#,
                    #"{"type":"result","id":\#(id),"ok":false,"step":14,"error":"no param group 'neck' (groups: body, head)"}"#]
        }
        let source = run.source
        try run.send("sched cosin")
        try run.send("lr neck 1e-3")
        #expect(eventually { run.pump(); return run.shown.count == 2 })
        #expect(run.shown.map(\.1) == [true, true])
        #expect(run.shown[0].0 == "✗ sched cosin: unknown scheduler 'cosin': valid kinds are cosine, step")
        #expect(run.shown[1].0 == "✗ lr neck 1e-3: no param group 'neck' (groups: body, head) (at step 14)")
        #expect(source.replies.map(\.outcome) == [.rejected("unknown scheduler 'cosin': valid kinds are cosine, step"),
                                                  .rejected("no param group 'neck' (groups: body, head)")])
    }

    @Test func malformedLinesFromTheRunAreSkippedAndTheConnectionStays() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        server.send("this is not json")
        server.send(#"{"type":"telemetry","x":1}"#)
        server.send(#"{"type":"status","state":"paused","step":20,"lr":[0.001,"NaN"],"groups":["body","head"]}"#)
        #expect(eventually { run.pump(); return source.status().state == .paused })
        #expect(source.connection.state == .connected)
        #expect(run.shown.map(\.0) == ["malformed message from the run: not JSON: 'this is not json'",
                                   "malformed message from the run: unknown message type 'telemetry'"])
        #expect(source.status().groups[1].lr.isNaN)
    }

    /// The run's state word is a phase or how it ended (an `EndReason`, as its log's end record says it):
    /// `completed` is finished, `interrupted` is stopped; a word of a later bridge reads as running.
    @Test func theStateWordIsReadAsAPhaseOrAnEndReason() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        for (word, phase) in [("completed", RunPhase.finished), ("interrupted", .stopped), ("diverged", .diverged),
                              ("paused", .paused), ("warming", .running)] {
            server.send(#"{"type":"status","state":"\#(word)","step":3,"lr":[0.001],"groups":["all"]}"#)
            #expect(eventually { run.pump(); return source.status().state == phase }, "\(word)")
        }
    }

    @Test func aLineOverTheLimitClosesTheConnectionWithTheReason() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        // After the greeting's status line, so nothing else can end the line.
        #expect(eventually { _ = source.drain(); return source.status().scheduler == "cosine T_max=200" })
        server.sendRaw(String(repeating: "x", count: BridgeProtocol.maxLineBytes + 10))
        #expect(eventually { _ = source.drain(); return source.connection.state != .connected })
        #expect(source.connection.state == .closed(reason: "the run sent over 65536 bytes without a newline"))
        #expect { try run.send("pause") } throws: { "\($0)".hasPrefix("not connected to the run") }
    }

    @Test func aVanishedRunIsCalledLostAndCommandsAreRefused() throws {
        let run = try Attached(steps: 12)
        let (server, source) = (run.server, run.source)
        var now = 100.0
        source.clock = { now }
        #expect(eventually { _ = source.drain(); return source.status().step == 12 })
        server.hangUp()
        #expect(eventually { _ = source.drain(); return source.connection.state != .connected })
        // The log may still be flushing its end record: no verdict at once.
        #expect(source.ending == .detached)
        #expect(source.status().message == "socket closed; waiting for the log's end record")
        now += 4
        _ = source.drain()
        guard case .lost(let why) = source.ending else { Issue.record("not lost: \(source.ending)"); return }
        #expect(why == "the run's socket closed at step 12 and its log has no end record: the training process exited or was killed")
        #expect(source.status().state == .failed)
        #expect(source.status().message == "lost the run: its socket closed with no end record in the log")
        #expect(throws: CommandError("not connected to the run: " + why)) { try run.send("resume") }
    }

    @Test func aRunThatEndsIsShownEndedNotLost() throws {
        let run = try Attached(steps: 12)
        let (server, source) = (run.server, run.source)
        var now = 100.0
        source.clock = { now }
        _ = source.drain()
        try appendLine(run.log, #"{"type":"end","reason":"completed","step":12,"epoch":0}"#)
        server.hangUp()
        #expect(eventually { _ = source.drain(); return source.connection.state != .connected })
        now += 10
        _ = source.drain()
        #expect(source.ending == .ended(reason: "completed"))
        #expect(source.status().state == .finished)
    }

    @Test func aRefusedOrMissingSocketIsOneClearLine() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        #expect(throws: BridgeError(dir.file("gone.sock") + ": no such socket (the run has ended or was never started with lrtop.attach)")) {
            try BridgeConnection(path: dir.file("gone.sock"))
        }
        // A socket file nobody listens on any more (a run that was killed).
        let server = try FakeBridgeServer()
        let path = server.path
        server.stopListeningKeepingFile()
        defer { unlink(path) }
        #expect(throws: BridgeError(path + ": connection refused (no process listens on it: the run has ended or crashed)")) {
            try BridgeConnection(path: path)
        }
    }

    @Test func aServerThatDoesNotGreetIsNotTakenForARun() throws {
        let server = try FakeBridgeServer(greet: false)
        defer { server.stop() }
        let connection = try BridgeConnection(path: server.path)
        var toldSlow = false
        #expect(throws: BridgeError(server.path + ": nothing from the other side within 1.2 s (is the run stuck inside a step, or not an lrtop run's socket?)")) {
            try connection.waitForGreeting(timeoutMs: 1200) { toldSlow = true }
        }
        #expect(toldSlow)
        #expect(connection.state == .closed(reason: nil))
    }

    @Test func aRunOfAnotherProtocolVersionIsRefusedWithWhatToDo() throws {
        let server = try FakeBridgeServer(greet: false)
        defer { server.stop() }
        let connection = try BridgeConnection(path: server.path)
        server.send(#"{"type":"hello","protocol":2,"run":"r","log":"/tmp/r/run.jsonl"}"#)
        #expect(throws: BridgeError(server.path + ": the run speaks bridge protocol 2, this lrtop speaks 1: give the run the lrtop Python package of this lrtop's version, \(LRTopVersion.release) (the same wheel, or pip install ./python from this lrtop's source)")) {
            try connection.waitForGreeting(timeoutMs: 3000)
        }
    }

    @Test func qDetachesWithoutAskingAndTheKeysSendCommands() throws {
        let run = try Attached()
        let (server, source) = (run.server, run.source)
        let dashboard = Dashboard(source: source)
        #expect(eventually { dashboard.update(); return dashboard.status.state == .running })
        #expect(dashboard.isLive)
        _ = dashboard.handle(.char(" "))
        _ = dashboard.handle(.char(":"))
        for c in "lr *0.5" { _ = dashboard.handle(.char(c)) }
        _ = dashboard.handle(.enter)
        #expect(eventually { _ = source.drain(); return server.lines.count == 3 })
        #expect(server.lines.dropFirst().map { $0 } == [#"{"type":"command","id":1,"text":"pause"}"#,
                                                        #"{"type":"command","id":2,"text":"lr *0.5"}"#])
        #expect(dashboard.handle(.char("q")) == .quit)
    }
}
