import Foundation
import Synchronization
import LRLog

/// The only place the trainer thread and the UI thread meet.
///
/// Commands go in (any thread; applied by the trainer at its next step boundary, never mid-step); records and a
/// status snapshot come out (drained by the UI at its frame rate). Every access is a short critical section, so
/// neither side ever waits on the other's work.
public final class TrainerChannel: Sendable {
    private struct State {
        var inbox: [String] = []
        /// Commands before this index were taken: the inbox is a queue the trainer takes a few at a time from.
        var inboxHead = 0
        /// Commands refused because `inboxLimit` were already waiting.
        var refused = 0
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

    public init() {}

    // MARK: commands in

    /// Queues a command's text. Parsing errors are reported by `CommandParser` before this (the UI shows them
    /// inline); errors that depend on the run's state come back as error events.
    public func send(_ command: String) {
        state.withLock { s in
            if s.inbox.count - s.inboxHead >= Self.inboxLimit { s.refused += 1 } else { s.inbox.append(command) }
        }
    }

    /// The oldest `limit` waiting commands (the trainer bounds the work of one step boundary); the others wait
    /// for the next boundary. Also how many were refused since the last call.
    func takeCommands(limit: Int) -> (commands: [String], refused: Int) {
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
            defer { s.refused = 0 }
            return (taken, s.refused)
        }
    }

    var hasCommands: Bool { state.withLock { $0.inbox.count > $0.inboxHead } }

    /// Commands waiting for a step boundary.
    public var pendingCommands: Int { state.withLock { $0.inbox.count - $0.inboxHead } }

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
