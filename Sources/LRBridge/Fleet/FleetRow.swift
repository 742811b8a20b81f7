import Foundation
import LRTUI

/// Which run a row is: its socket, on its host (a socket path is unique on one machine, not across a cluster).
public struct FleetRowID: Hashable, Sendable, CustomStringConvertible {
    /// Short hostname; the local machine's own name for runs found here.
    public var host: String
    public var socket: String
    public init(host: String, socket: String) { self.host = host; self.socket = socket }
    public var description: String { host + ":" + socket }
}

/// How the fleet's connection to one run stands.
public enum FleetConnectionState: Equatable, Sendable {
    /// Found (registry or socket folder); the greeting has not come yet.
    case connecting
    /// Greeted, statuses arriving.
    case live
    /// The run ended: the reason from its last status (`ended`), its log's end record, or "process gone".
    case ended(String)
    /// It could not be reached (refused, permission, a protocol mismatch), in words; retried on the next rescan.
    case unreachable(String)

    public var isLive: Bool { self == .live }
    public var isEnded: Bool { if case .ended = self { return true } else { return false } }
}

/// The answer to the last command sent to a row with `Fleet.send`: the typed reply the attach dashboard words
/// (`CommandReply`: applied, with the run's message and step, or rejected with its reason), or pending.
public enum FleetAnswer: Equatable, Sendable {
    /// Sent; the run queues it for its next optimizer step.
    case pending(text: String)
    case answered(CommandReply)
    /// Not sent: the row's connection is not live (the words say why).
    case notSent(text: String, reason: String)

    /// The command's text as sent.
    public var text: String {
        switch self {
        case .pending(let t), .notSent(let t, _): return t
        case .answered(let r): return r.text
        }
    }
    /// True applied, false refused or not sent, nil pending.
    public var ok: Bool? {
        switch self {
        case .pending: return nil
        case .notSent: return false
        case .answered(let r): return r.outcome == .applied
        }
    }
}

/// The threads of one rank of a run, from a stacks request.
public struct FleetRankStacks: Equatable, Sendable {
    public var rank: Int
    public var threads: [ThreadStack]
    /// Why this rank did not answer (its socket unreachable, no answer within 5 s, the server predates stacks).
    public var error: String?
    public init(rank: Int, threads: [ThreadStack], error: String? = nil) { self.rank = rank; self.threads = threads; self.error = error }
}

/// The answer to `Fleet.stacks(of:)`: pending until every rank answered (or failed), then one entry per rank.
public enum FleetStacks: Equatable, Sendable {
    case pending
    case ready([FleetRankStacks])
}

/// One run as the fleet sees it: who it is (from its registry entry, socket folder, greeting), how the connection
/// stands, and the last status it sent. A DDP job is one row (rank 0's) with its other ranks in `ranks`.
public struct FleetRow: Equatable, Sendable, Identifiable {
    public var id: FleetRowID
    public var name: String
    /// "lrtop", "plain", "lightning", "hf", or nil when unknown (a run of an older package, before its greeting).
    public var kind: String?
    public var host: String
    public var pid: Int
    public var socket: String { id.socket }
    public var log: String?
    public var runDir: String?
    public var worldSize: Int?
    public var rank: Int?
    public var slurm: RegistryEntry.Slurm?
    /// The registry entry's start time (ISO 8601), when there was one.
    public var start: String?

    public var connection: FleetConnectionState = .connecting
    /// The last status the run sent, with the figures of protocol "E" (`status.figures`).
    public var status: BridgeStatus?
    /// When that status arrived (this machine's clock).
    public var statusAt: Date?
    /// When the row was first seen, and when it ended (it is dropped `Fleet.keepEnded` after that).
    public var seenAt: Date
    public var endedAt: Date?

    /// The other ranks of a DDP job (rank 1 ...), each with its own connection and status; empty otherwise.
    public var ranks: [FleetRow] = []

    /// The answer to the last command sent with `Fleet.send`, nil when none was.
    public var answer: FleetAnswer?
    /// The last stacks request's answer, nil when none was made.
    public var stacks: FleetStacks?

    public init(id: FleetRowID, name: String, kind: String? = nil, pid: Int, seenAt: Date = Date()) {
        self.id = id; self.name = name; self.kind = kind; self.host = id.host; self.pid = pid; self.seenAt = seenAt
    }

    /// Seconds since the last optimizer step as of `now`: the status's `step_age` plus the time since it came.
    public func stepAge(now: Date = Date()) -> Double? {
        guard let age = status?.figures.stepAge, let at = statusAt else { return nil }
        return age + max(0, now.timeIntervalSince(at))
    }

    /// Stalled: no step for over five step times (spec §6), while running.
    public func isStalled(now: Date = Date()) -> Bool {
        guard connection.isLive, status?.state == "running", let age = stepAge(now: now),
              let per = status?.figures.stepTime, per > 0 else { return false }
        return age > 5 * per
    }
}
