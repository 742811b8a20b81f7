import Foundation
import Synchronization
import LRLog
import LRCommand

/// The only place the trainer thread and the UI thread meet.
///
/// Commands go in as values with an id (any thread; applied by the trainer at its next step boundary, never
/// mid-step); records, each command's answer by its id, and a status snapshot come out (drained by the UI at its
/// frame rate). Every access is a short critical section, so neither side ever waits on the other's work.
public final class TrainerChannel: Sendable {
    /// The trainer's answer to a command sent here: the event it logged for it (`command` when it applied,
    /// `error` when it could not or was refused, with the reason in its message; `info` when the run ended before
    /// it).
    public struct Reply: Sendable, Equatable {
        public let id: Int
        public let event: EventRecord
    }

    private struct State {
        var inbox: [IssuedCommand] = []
        /// Commands before this index were taken: the inbox is a queue the trainer takes a few at a time from.
        var inboxHead = 0
        var lastID = 0
        /// The ids of commands refused because `inboxLimit` were already waiting, as runs of consecutive ids (a
        /// flood is refused in one run, so this stays a few ranges however long the flood).
        var refused: [ClosedRange<Int>] = []
        var replies: [Reply] = []
        /// Commands a control socket sent (`Origin.socket`), whose answers go to `socketReplies`, not the UI's.
        var socketIDs: Set<Int> = []
        var socketReplies: [Reply] = []
        var outbox: [RunRecord] = []
        var status = TrainerStatus()
        /// Bounded: a UI that stops draining (a frozen terminal) must not grow memory without limit.
        var dropped = 0
    }
    private let state = Mutex(State())
    private let outboxLimit = 1_000_000
    /// Commands that may wait at once: a flood (a script gone wrong, a key held down for minutes) must not grow
    /// memory without limit; the rest are refused, and the trainer says how many.
    public static let inboxLimit = 10_000

    /// What the trainer thread is doing now (the `stacks` answer of its control socket).
    public let activity = TrainerActivity()

    public init() {}

    /// Who sent a command: its answer goes back to the same place. The UI and a control socket share the queue
    /// (one order of application, at step boundaries), each takes its own answers.
    public enum Origin: Sendable { case ui, socket }

    // MARK: commands in

    /// Queues a command; returns its id, which its reply carries. `text` is what the log keeps as typed (default:
    /// the command as the language writes it). Errors that depend on the run's state come back as error events;
    /// a command sent while `inboxLimit` wait is refused, and answered so at the next step boundary.
    @discardableResult
    public func send(_ command: Command, text: String? = nil, from origin: Origin = .ui) -> Int {
        enqueue(origin) { IssuedCommand(id: $0, command: command, text: text) }
    }

    /// A typed text that did not parse (the prompt shows why at once): the trainer logs it as an error event, so
    /// the run log holds every command a person sent.
    @discardableResult
    public func send(refused text: String, because error: CommandError, from origin: Origin = .ui) -> Int {
        enqueue(origin) { IssuedCommand(id: $0, text: text, parsed: .failure(error)) }
    }

    private func enqueue(_ origin: Origin, _ make: (Int) -> IssuedCommand) -> Int {
        state.withLock { s in
            s.lastID += 1
            let id = s.lastID
            if origin == .socket { s.socketIDs.insert(id) }
            if s.inbox.count - s.inboxHead < Self.inboxLimit {
                s.inbox.append(make(id))
            } else if let last = s.refused.last, last.upperBound == id - 1 {
                s.refused[s.refused.count - 1] = last.lowerBound...id
            } else {
                s.refused.append(id...id)
            }
            return id
        }
    }

    /// The oldest `limit` waiting commands (the trainer bounds the work of one step boundary); the others wait
    /// for the next boundary. Also the ids of those refused since the last call.
    func takeCommands(limit: Int) -> (commands: [IssuedCommand], refused: [ClosedRange<Int>]) {
        state.withLock { s in
            let end = min(s.inbox.count, s.inboxHead + max(0, limit))
            let taken = Array(s.inbox[s.inboxHead..<end])
            s.inboxHead = end
            if s.inboxHead == s.inbox.count {
                s.inbox.removeAll(keepingCapacity: true)
                s.inboxHead = 0
            } else if s.inboxHead > 4096 && s.inboxHead * 2 > s.inbox.count {
                s.inbox.removeFirst(s.inboxHead)
                s.inboxHead = 0
            }
            defer { s.refused.removeAll() }
            return (taken, s.refused)
        }
    }

    func reply(to id: Int, with event: EventRecord) { reply(to: CollectionOfOne(id), with: event) }

    /// Answers each of `ids` with the one event that logged what became of them all.
    func reply(to ids: some Sequence<Int>, with event: EventRecord) {
        state.withLock { s in
            for id in ids {
                // Bounded like the records: nobody reading them must not grow memory.
                if s.socketIDs.remove(id) != nil {
                    if s.socketReplies.count >= Self.replyLimit { s.socketReplies.removeFirst(Self.replyLimit / 2) }
                    s.socketReplies.append(Reply(id: id, event: event))
                    continue
                }
                if s.replies.count >= Self.replyLimit { s.replies.removeFirst(Self.replyLimit / 2) }
                s.replies.append(Reply(id: id, event: event))
            }
        }
    }

    /// Answers every command refused in `ids` with the one event that counted them. Only the newest
    /// `replyLimit` answers can be kept unread, so only those are given: a flood costs the boundary that answers
    /// it a bounded amount of work.
    func reply(toRefused ids: [ClosedRange<Int>], with event: EventRecord) {
        var budget = Self.replyLimit
        var newest: [ClosedRange<Int>] = []
        for range in ids.reversed() where budget > 0 {
            let kept = max(range.lowerBound, range.upperBound - budget + 1)...range.upperBound
            newest.append(kept)
            budget -= kept.count
        }
        reply(to: newest.reversed().joined(), with: event)
    }

    /// Answers kept until the UI takes them: room for every command the queue holds and as many refused at one
    /// boundary, so a UI that takes them every frame misses none; one that stopped reading loses the oldest.
    static let replyLimit = 2 * inboxLimit

    /// The answers given since the last call, oldest first.
    public func takeReplies() -> [Reply] {
        state.withLock { s in
            defer { s.replies.removeAll(keepingCapacity: true) }
            return s.replies
        }
    }

    /// The answers to commands a control socket sent (`from: .socket`), oldest first.
    public func takeSocketReplies() -> [Reply] {
        state.withLock { s in
            defer { s.socketReplies.removeAll(keepingCapacity: true) }
            return s.socketReplies
        }
    }

    var hasCommands: Bool { state.withLock { $0.inbox.count > $0.inboxHead } }

    // MARK: records out

    func publish(_ record: RunRecord) {
        state.withLock { s in
            if s.outbox.count >= outboxLimit { s.outbox.removeFirst(outboxLimit / 2); s.dropped += outboxLimit / 2 }
            s.outbox.append(record)
        }
    }

    /// Everything published since the last call.
    public func drain() -> [RunRecord] {
        state.withLock { s in
            defer { s.outbox.removeAll(keepingCapacity: true) }
            return s.outbox
        }
    }

    func update(_ body: (inout TrainerStatus) -> Void) {
        state.withLock { body(&$0.status) }
    }

    public var status: TrainerStatus { state.withLock { $0.status } }
}

/// What the trainer is doing now that its records do not say: for the status panel. Metric values (step, loss,
/// grad norm, evaluations) are read from the records, so panels never choose between two sources.
public struct TrainerStatus: Sendable {
    public var phase: RunPhase = .starting
    /// Why the run paused or ended, when that is not obvious (guard trips, errors).
    public var message: String? = nil
    public var step = 0
    public var epoch = 0
    public var totalSteps = 0
    public var stepsPerEpoch = 0
    public var groupNames: [String] = []
    public var lrs: [Double] = []
    public var held: [Bool] = []
    /// Groups whose LR was set by hand since the schedule last wrote it as planned.
    public var overridden: [Bool] = []
    public var optimizerSummary = ""
    public var schedulerSpec = ""
    public var schedulerStatus = ""
    /// `plan[k][g]`: the LR of group g after k+1 more steps if nothing intervenes (empty when unknowable).
    public var plan: [[Double]] = []
    public var warmupLeft = 0
    public var checkpoints = 0
    /// Checkpoint files of this run on disk now (automatic ones beyond the kept number are deleted).
    public var checkpointFiles = 0
    public var runDirectory: String? = nil
    public var logPath: String? = nil
    public var datasetName = ""
    public var modelSummary = ""
    /// The most steps a second the run takes (`pace`); nil: full speed.
    public var pace: Double? = nil
    public init() {}
}
