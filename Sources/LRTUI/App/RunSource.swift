import Foundation
import LRCommand
import LRLog

/// What the dashboard watches and steers: the live trainer, an attached run, a replay of a run log, a watched log.
/// All calls come from the UI's thread and must return at once; a source that is fed by another thread
/// (the trainer) synchronises inside.
///
/// Commands travel as values, parsed once where they were typed (the dashboard's prompt) or made by a key; each
/// gets an id, and its answer comes back by that id through `takeReplies`, the one reply path of every source.
public protocol RunSource: AnyObject {
    /// Records that arrived since the last call; never blocks.
    func drain() -> [RunRecord]
    /// Live status that is not in the records (state, scheduler text, held LRs, planned LR ...).
    func status() -> LiveStatus
    /// Sends a command of the steering language; `text` is what the person typed (or the key's command as the
    /// language writes it). Returns the command's id, or throws why it cannot be sent (a replay or a watched log
    /// is read-only; the run has gone).
    func send(_ command: Command, text: String) throws(CommandError) -> Int
    /// A typed text that does not parse (the prompt shows why): a run that logs every command it is sent logs it.
    func noteRefused(_ text: String, because error: CommandError)
    /// The answers to commands sent, oldest first, since the last call.
    func takeReplies() -> [CommandReply]
    /// Problems of the source itself to show on the key bar (a malformed message from an attached run).
    func takeWarnings() -> [String]
    /// The replay language (a replay's cursor and playback); nil when done, else why not.
    func control(_ command: ReplayCommand) -> String?
    /// The schedulers the `s` menu offers now (built when the menu opens, sized to the rest of the run).
    func schedulerKinds() -> [SchedulerKind]
    /// True for a training run in this process; false for a replay.
    var isLive: Bool { get }
    /// Whether quitting the UI ends the run (a run trained in this process: `q` asks first), or leaves it going
    /// (`lrtop attach` detaches from a run in another process).
    var quitEndsRun: Bool { get }
    /// `d` may close the screen and leave the run going in this process (a run trained here, served on its socket).
    var canDetach: Bool { get }
    /// The run's folder (where `subruns/` is), nil when unknown.
    var runFolder: URL? { get }
}

extension RunSource {
    public var quitEndsRun: Bool { isLive }
    public var canDetach: Bool { false }
    public var runFolder: URL? { nil }
    public func send(_ command: Command, text: String) throws(CommandError) -> Int {
        throw CommandError("this view is read-only: '\(text)' can only steer a run trained in this lrtop or attached to it")
    }
    public func noteRefused(_ text: String, because error: CommandError) {}
    public func takeReplies() -> [CommandReply] { [] }
    public func takeWarnings() -> [String] { [] }
    public func control(_ command: ReplayCommand) -> String? { "only a replay moves through a run" }
    public func schedulerKinds() -> [SchedulerKind] { [] }
}

/// A run's answer to a command sent to it.
public struct CommandReply: Equatable, Sendable {
    public enum Outcome: Equatable, Sendable {
        case applied
        /// Refused or could not apply; nothing changed. The run's reason.
        case rejected(String)
    }
    public var id: Int
    /// The command as it was sent.
    public var text: String
    public var outcome: Outcome
    /// The event the run logged for it, when the source has it (a run trained here).
    public var event: EventRecord?
    /// The run's own words and the step it applied at (an attached run's result).
    public var message: String?
    public var step: Int?

    public init(id: Int, text: String, outcome: Outcome, event: EventRecord? = nil, message: String? = nil,
                step: Int? = nil) {
        self.id = id; self.text = text; self.outcome = outcome; self.event = event; self.message = message
        self.step = step
    }

    /// The answer to a command from the event the run logged for it: a `command` event when it applied; any other
    /// (an error, the note that the run ended before it) says why it did not.
    public init(id: Int, event: EventRecord) {
        self.init(id: id, text: event.text,
                  outcome: event.kind == .command ? .applied : .rejected(event.message ?? "not applied"), event: event)
    }
}

/// Everything the status panel, header and menus show that the records do not carry. Plain values, so a source
/// can build it under its own lock and hand a copy over.
public struct LiveStatus: Equatable, Sendable {
    /// One param group's LR as the optimizer will use it next.
    public struct Group: Equatable, Sendable {
        public var name: String
        public var lr: Double
        /// The LR is held by a manual override (the scheduler does not write it until `lr release`).
        public var held: Bool
        /// Extra words shown after the LR ("override ×2", "warmup 40/200").
        public var note: String?

        public init(name: String, lr: Double, held: Bool = false, note: String? = nil) {
            self.name = name; self.lr = lr; self.held = held; self.note = note
        }
    }

    /// The LR the schedule will give each group for the next steps: `lrs[g][i]` is group g's LR at step
    /// `fromStep + i`. Drawn dimmed ahead of the current step.
    public struct Planned: Equatable, Sendable {
        public var fromStep: Int
        public var lrs: [[Double]]

        public init(fromStep: Int, lrs: [[Double]]) { self.fromStep = fromStep; self.lrs = lrs }

        public var lastStep: Int { fromStep + max(0, (lrs.map(\.count).max() ?? 0) - 1) }
    }

    /// A free-form line for the status panel ("guard" : "armed, 3σ").
    public struct Detail: Equatable, Sendable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) { self.key = key; self.value = value }
    }

    /// The run's name (header, legend).
    public var title: String
    public var state: RunPhase
    /// Why it is in that state ("diverged: loss is nan at step 1234"), shown next to the state.
    public var message: String?
    /// Optimizer steps taken.
    public var step: Int
    /// 0-based (the UI shows it 1-based).
    public var epoch: Int
    public var totalSteps: Int?
    public var stepsPerEpoch: Int?
    /// One line: "adamw lr=3e-4 β=(0.9,0.999) wd=0.01".
    public var optimizer: String
    /// One line: "cosine T_max=2000 η_min=0 (340/2000)".
    public var scheduler: String
    /// The current scheduler as a spec (`cosine:T_max=2000,eta_min=0`), to prefill the `s` menu.
    public var schedulerSpec: String?
    public var groups: [Group]
    public var planned: Planned?
    /// Replay: the step the charts are drawn up to (nil: everything drained).
    public var cursor: Int?
    public var details: [Detail]
    /// The run's log file when the source knows it (a run trained here, a watched log): the dashboard finds the
    /// run's sub-runs (`fork` branches) beside it.
    public var logPath: String? = nil
    /// The most steps a second the run takes (`pace`), nil at full speed: the header shows it.
    public var pace: Double? = nil
    /// How the run's script numbers its epochs (0 or 1: a bridged run's `epoch_base`); nil: lrtop's own numbering,
    /// shown from 1. `epoch` stays 0-based.
    public var epochBase: Int? = nil
    /// Steps into the current epoch as the run's data loader counts them, when the run says (a bridged run's
    /// `epoch_step`); nil: counted from the step.
    public var epochStep: Int? = nil

    public init(title: String = "", state: RunPhase = .starting, message: String? = nil, step: Int = 0, epoch: Int = 0,
                totalSteps: Int? = nil, stepsPerEpoch: Int? = nil, optimizer: String = "", scheduler: String = "",
                schedulerSpec: String? = nil, groups: [Group] = [], planned: Planned? = nil,
                cursor: Int? = nil, details: [Detail] = []) {
        self.title = title; self.state = state; self.message = message; self.step = step; self.epoch = epoch
        self.totalSteps = totalSteps; self.stepsPerEpoch = stepsPerEpoch; self.optimizer = optimizer
        self.scheduler = scheduler; self.schedulerSpec = schedulerSpec; self.groups = groups
        self.planned = planned
        self.cursor = cursor; self.details = details
    }
}
