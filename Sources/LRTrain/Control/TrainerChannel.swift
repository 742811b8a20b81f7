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
    /// `error` when it could not, with the reason in its message).
    public struct Reply: Sendable, Equatable {
        public let id: Int
        public let event: EventRecord
    }

    private struct State {
        var inbox: [IssuedCommand] = []
        var lastID = 0
        var replies: [Reply] = []
        var outbox: [RunRecord] = []
        var status = TrainerStatus()
        /// Bounded: a UI that stops draining (a frozen terminal) must not grow memory without limit.
        var dropped = 0
    }
    private let state = Mutex(State())
    private let outboxLimit = 1_000_000

    public init() {}

    // MARK: commands in

    /// Queues a command; returns its id, which its reply carries. `text` is what the log keeps as typed (default:
    /// the command as the language writes it). Errors that depend on the run's state come back as error events.
    @discardableResult
    public func send(_ command: Command, text: String? = nil) -> Int {
        enqueue { IssuedCommand(id: $0, command: command, text: text) }
    }

    /// A typed text that did not parse (the prompt shows why at once): the trainer logs it as an error event, so
    /// the run log holds every command a person sent.
    @discardableResult
    public func send(refused text: String, because error: CommandError) -> Int {
        enqueue { IssuedCommand(id: $0, text: text, parsed: .failure(error)) }
    }

    private func enqueue(_ make: (Int) -> IssuedCommand) -> Int {
        state.withLock { s in
            s.lastID += 1
            s.inbox.append(make(s.lastID))
            return s.lastID
        }
    }

    func takeCommands() -> [IssuedCommand] {
        state.withLock { s in
            defer { s.inbox.removeAll(keepingCapacity: true) }
            return s.inbox
        }
    }

    func reply(to id: Int, with event: EventRecord) {
        state.withLock { s in
            // Bounded like the records: nobody reading them must not grow memory.
            if s.replies.count >= 4096 { s.replies.removeFirst(2048) }
            s.replies.append(Reply(id: id, event: event))
        }
    }

    /// The answers given since the last call, oldest first.
    public func takeReplies() -> [Reply] {
        state.withLock { s in
            defer { s.replies.removeAll(keepingCapacity: true) }
            return s.replies
        }
    }

    var hasCommands: Bool { state.withLock { !$0.inbox.isEmpty } }

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
    public init() {}
}
