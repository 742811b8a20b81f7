import Foundation
import LRLog
import LRTUI
import LRCommand

/// A PyTorch run in another process as the dashboard sees it (`lrtop attach`): the records of the run so far come
/// from its run log, then, pushed over its bridge socket as the run makes them (docs/bridge.md "Records, pushed"),
/// joined by line number with no gap and no duplicate (`RecordJoin`); the log is read again only for lines the
/// stream skipped, or followed as `lrtop watch` follows it when the run does not push (or its socket closed). The
/// state, LRs and scheduler, and the answers to commands, come from the socket too. Everything here returns at once:
/// the log is read in chunks and the socket is non-blocking.
public final class AttachSource: RunSource {
    public var isLive: Bool { true }
    /// `q` detaches: the run goes on in its own process.
    public var quitEndsRun: Bool { false }

    /// How a command the person sent fared.
    public struct Reply: Equatable, Sendable {
        public enum Outcome: Equatable, Sendable {
            /// Parsed and queued by the run, not applied yet.
            case queued
            case applied(step: Int?, message: String?)
            /// Refused (did not parse there) or could not apply; nothing changed.
            case rejected(String)
        }
        public var id: Int
        public var command: String
        public var outcome: Outcome

        public init(id: Int, command: String, outcome: Outcome) {
            self.id = id; self.command = command; self.outcome = outcome
        }
    }

    /// How the session ended, for the message after the terminal is restored.
    public enum Ending: Equatable, Sendable {
        /// The person detached; the run goes on.
        case detached
        /// The run ended and wrote its end record.
        case ended(reason: String)
        /// The connection went away and the log has no end record: the process exited or was killed.
        case lost(String)
    }

    public private(set) var connection: BridgeConnection
    /// The SSH link to a run on another host; nil for a local socket.
    public var transport: (any AttachTransport)?
    public let logURL: URL
    public var runFolder: URL? { logURL.deletingLastPathComponent() }
    /// Every command's fate so far, oldest first.
    public private(set) var replies: [Reply] = []
    /// The `s` menu's choices for a run with this many steps left, of this many steps an epoch (0: not known):
    /// the scheduler catalogue, which the CLI builds from the scheduler descriptors.
    public var catalog: (_ remainingSteps: Int, _ stepsPerEpoch: Int) -> [SchedulerKind] = { _, _ in [] }
    /// Checks a `sched` spec by the same factory a run trained here uses (the CLI provides it; the shared vectors
    /// hold the bridge's parser to it): the reason it is refused, or nil. A typo is refused inline, never sent.
    public var checkSchedule: (_ spec: String, _ remainingSteps: Int, _ stepsPerEpoch: Int) -> String? = { _, _, _ in nil }
    /// Answers and warnings not yet taken by the dashboard.
    private var unread: [CommandReply] = []
    private var warnings: [String] = []
    /// Monotonic seconds; tests replace it.
    public var clock: () -> Double = ReplaySource.monotonicSeconds
    /// After the socket closes, how long to wait for the end record before calling the run lost (the log is
    /// flushed at least every second).
    public var endRecordGrace: Double = 3
    /// Without any status for this long while connected, the status says so.
    public var staleAfter: Double = 5

    private let log: WatchSource
    /// Seconds between reads of the log while it is needed (history, a gap, no stream).
    private let pollInterval: Double
    private var lastRead: Double?
    private var join = RecordJoin()
    /// Subscribed to the pushed records (sent once the history is read and the run said it pushes).
    public private(set) var subscribed = false
    /// Where each record handed on so far came from: pushed over the socket, or read from the log.
    public private(set) var pushedCount = 0
    public private(set) var readCount = 0
    private var bridge: BridgeStatus?
    private var lastMessageAt: Double
    private var closedAt: Double?
    private var closeReason: String?
    private var lostReason: String?
    private var warningCount = 0
    private var noticeWarnings: [String] = []

    public init(connection: BridgeConnection, logURL: URL, pollInterval: Double = 0.15) {
        self.connection = connection
        self.logURL = logURL
        log = WatchSource(url: self.logURL, pollInterval: pollInterval)
        self.pollInterval = pollInterval
        lastMessageAt = ReplaySource.monotonicSeconds()
    }

    public func drain() -> [RunRecord] { drainNumbered().map(\.record) }

    public typealias Arrival = RecordJoin.Arrival

    /// The records due since the last call, in line order, each once; with their line numbers and sources.
    public func drainNumbered() -> [Arrival] {
        let now = clock()
        var arrived: [Arrival] = []
        for message in connection.poll() {
            lastMessageAt = now
            handle(message, into: &arrived)
        }
        // The file: its history first; then only for lines the stream skipped, or while nothing is pushed.
        let streaming = subscribed && connection.state == .connected
        if !streaming || join.hasHole, lastRead.map({ now - $0 >= pollInterval }) ?? true {
            lastRead = now
            if let read = log.readNumbered() {
                arrived += join.takeFile(read.records, linesRead: read.linesRead)
            }
        }
        if !subscribed, lastRead != nil, connection.hello?.records == true, connection.state == .connected {
            subscribed = connection.subscribe(fromLine: join.next)
        }
        for a in arrived { if a.pushed { pushedCount += 1 } else { readCount += 1 } }
        log.take(arrived.map(\.record))
        if connection.warnings.count > warningCount {
            warnings += connection.warnings[warningCount...]
            warningCount = connection.warnings.count
        }
        if let fresh = transport?.poll(connection) {
            connection = fresh
            warningCount = 0
        }
        if case .closed(let reason?) = connection.state, closedAt == nil, transport?.isReconnecting != true {
            closedAt = now
            closeReason = reason
        }
        if let t = closedAt, lostReason == nil, log.status().state.isActive, now - t > endRecordGrace {
            let step = max(bridge?.step ?? 0, log.status().step)
            let at = step > 0 ? " at step \(step)" : ""
            let why = closeReason == BridgeConnection.closedByPeer ? "" : " (\(closeReason ?? ""))"
            lostReason = "the run's socket closed\(at) and its log has no end record: the training process exited or was killed" + why
        }
        return arrived
    }

    /// How things stand now; `.detached` while the connection is up.
    public var ending: Ending {
        if let end = log.end {
            return .ended(reason: end.reason.rawValue + (end.message.map { " (\($0))" } ?? ""))
        }
        let s = log.status()
        if !s.state.isActive { return .ended(reason: s.message ?? s.state.rawValue) }
        if let lostReason { return .lost(lostReason) }
        return .detached
    }

    /// Sends the command's text (the run parses it by the same rules: docs/bridge.md); the dashboard parsed it
    /// already, so a typo never reaches the run.
    public func send(_ command: Command, text: String) throws(CommandError) -> Int {
        let text = text.trimmingCharacters(in: .whitespaces)
        switch connection.state {
        case .closed(let reason):
            if let t = transport, t.isReconnecting {
                throw CommandError("not sent: " + (t.note ?? "reconnecting") + " (the run goes on)")
            }
            throw CommandError("not connected to the run: " + (lostReason ?? reason ?? "detached"))
        case .connected:
            if case .sched(let spec) = command {
                let s = status()
                let (left, overflow) = (s.totalSteps ?? (s.step + 1000)).subtractingReportingOverflow(s.step)
                if let why = checkSchedule(spec, overflow ? 1 : max(1, left), s.stepsPerEpoch ?? 0) { throw CommandError(why) }
            }
            guard let id = connection.send(command: text) else { throw CommandError("not connected to the run") }
            replies.append(Reply(id: id, command: text, outcome: .queued))
            return id
        }
    }

    public func takeReplies() -> [CommandReply] {
        defer { unread.removeAll() }
        return unread
    }

    public func takeWarnings() -> [String] {
        defer { warnings.removeAll() }
        return warnings
    }

    public func schedulerKinds() -> [SchedulerKind] {
        guard let b = bridge else { return [] }
        let s = status()
        // A run of unknown length: the menu's lengths default to a thousand more steps.
        // The log's total may be anything a file holds: the difference must not overflow.
        let (left, overflow) = (s.totalSteps ?? (b.step + 1000)).subtractingReportingOverflow(b.step)
        return catalog(overflow ? 1 : max(1, left), s.stepsPerEpoch ?? 0)
    }

    private func handle(_ message: ServerMessage, into arrived: inout [Arrival]) {
        switch message {
        case .hello:
            break
        case .record(let line, let record):
            arrived += join.takePushed(line: line, record)
        case .gap(_, let to, let reason):
            join.takeGap(to: to)
            if let reason, warnings.count < 1000 { warnings.append("✗ \(reason)") }
        case .status(let s):
            bridge = s
        case .ack(let id, let ok, let error):
            guard let i = replies.lastIndex(where: { $0.id == id }) else { return }
            if !ok {
                let reply = CommandReply(refused: id, text: replies[i].command, error: error)
                replies[i].outcome = .rejected(reply.rejection)
                unread.append(reply)
            }
        case .result(let id, let ok, let step, let message, let error, let answer):
            guard let i = replies.lastIndex(where: { $0.id == id }) else { return }
            let reply = CommandReply(result: id, text: replies[i].command, ok: ok, step: step, message: message,
                                     error: error, answer: answer, currentStep: log.status().step)
            replies[i].outcome = reply.outcome == .applied ? .applied(step: step, message: reply.message ?? reply.event?.message)
                : .rejected(reply.rejection)
            unread.append(reply)
        case .stacks:
            break
        case .error(let text):
            warnings.append("✗ the run refused a message: \(text)")
        }
    }

    public func status() -> LiveStatus {
        var s = log.status()
        s.title = connection.hello.flatMap { $0.run.isEmpty ? nil : $0.run } ?? logURL.deletingLastPathComponent().lastPathComponent
        let ended = !s.state.isActive
        if let b = bridge, !ended {
            s.state = Self.state(b.state)
            s.step = max(s.step, b.step)
            s.epoch = b.epoch
            if let t = b.totalSteps { s.totalSteps = t }
            let names = b.groups.isEmpty ? s.groups.map(\.name) : b.groups
            s.groups = b.lrs.enumerated().map { g, lr in
                LiveStatus.Group(name: g < names.count ? names[g] : "g\(g + 1)", lr: lr, held: b.hold,
                                 note: b.override && !b.hold ? "override" : nil)
            }
            if let text = ReplaySource.optimizerText(log.config, inForce: b.lrs.first) { s.optimizer = text }
            if let sched = b.scheduler { s.scheduler = sched }
            s.epochBase = b.epochBase ?? s.epochBase
            s.epochStep = b.epochStep
            if let f = b.findLR {
                // A sweep writes to its sub-run's log, not the run's: the run's log stands still, which is no stall.
                s.message = Self.sweepText(f)
            } else if s.state == .paused {
                // Why it is paused, in the run's words (the guard's reason); without one, the state says it all.
                s.message = b.reason.flatMap { $0.isEmpty ? nil : TerminalText.sanitized($0) }
            } else if s.state == .running {
                s.message = nil
            }
        }
        if !ended {
            let now = clock()
            if lostReason != nil {
                s.state = .failed
                s.message = "lost the run: its socket closed with no end record in the log"
            } else if closedAt != nil || connection.state != .connected {
                s.message = "socket closed; waiting for the log's end record"
            } else if now - lastMessageAt > staleAfter {
                s.message = "no word from the run for " + Format.duration(now - lastMessageAt)
            }
            if lostReason == nil, let t = transport, let note = t.note, t.isReconnecting || s.message == nil {
                s.message = note
            }
        }
        var details: [LiveStatus.Detail] = s.details.filter { $0.key == "warning" }
        if let h = connection.hello {
            var process = [h.framework ?? "pytorch"]
            if let w = h.worldSize, w > 1 { process.append("\(w) ranks") }
            if let pid = h.pid { process.append("pid \(pid)") }
            details.append(LiveStatus.Detail("process", process.joined(separator: " · ")))
        }
        if let b = bridge {
            if let scale = b.lossScale { details.append(LiveStatus.Detail("loss scale", Format.lr(scale))) }
            if let skipped = b.skippedSteps, b.lossScale != nil || skipped > 0 {
                details.append(LiveStatus.Detail("skipped", "\(skipped) steps (inf/NaN gradients)"))
            }
            if let c = b.checkpoints { details.append(LiveStatus.Detail("checkpoints", "\(c)")) }
        }
        details.append(LiveStatus.Detail("socket", connection.state == .connected ? connection.path : "closed"))
        if let t = transport { details += t.details } else { details.append(LiveStatus.Detail("log", logURL.path)) }
        s.details = details
        return s
    }

    /// `find-lr sweeping 23/100 → subruns/find-lr-11`.
    static func sweepText(_ f: BridgeFindLR) -> String {
        "find-lr sweeping \(f.step)/\(f.steps)" + (f.subrun.map { " → " + TerminalText.sanitized($0) } ?? "")
    }

    /// Closes the connection; the run goes on.
    public func detach() {
        connection.close()
        transport?.close()
    }

    /// The bridge's state word as a phase: a phase's name, or how the run ended (an `EndReason`, the end record's
    /// word: `completed` is finished); words it may add later read as running.
    static func state(_ word: String) -> RunPhase {
        if let phase = RunPhase(rawValue: word) { return phase }
        if let reason = EndReason(rawValue: word) { return RunPhase(ended: reason) }
        return .running
    }
}
