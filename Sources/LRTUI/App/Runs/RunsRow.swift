/// One run of the runs table (`lrtop runs`) as the table shows it: plain values, so the table knows nothing of
/// sockets or registries. The lrtop target fills these from the fleet of live runs; tests build them by hand.
public struct RunsRow: Equatable, Sendable {
    /// Stays with the run through sorting, filtering and updates (its socket path).
    public var id: String
    public var name: String
    /// lrtop / plain / lightning / hf.
    public var kind: String
    /// More than 1: a DDP job, `ranks` holds a row per rank.
    public var worldSize: Int?
    /// Set on the per-rank rows of a job.
    public var rank: Int?
    public var host: String
    /// running, paused, guard, find-lr, finished, stopped, failed, connecting, unreachable ...
    public var state: String
    /// Why it is paused, or how it ended.
    public var reason: String?
    /// The run is over (or gone): dimmed, kept a while with its reason.
    public var ended: Bool
    public var step: Int?
    public var totalSteps: Int?
    public var epoch: Int?
    public var lrs: [Double]
    public var groups: [String]
    /// The smoothed training loss and its recent course, oldest first.
    public var loss: Double?
    public var lossTrend: [Double]
    public var valLoss: Double?
    public var valAcc: Double?
    public var stepsPerSecond: Double?
    public var samplesPerSecond: Double?
    public var etaSeconds: Double?
    /// GPU memory in bytes, when the run reports it.
    public var gpuPeak: Double?
    public var gpuTotal: Double?
    /// Seconds since the last optimizer step, and the median seconds per step.
    public var stepAge: Double?
    public var stepTime: Double?
    /// The ranks of a DDP job (rank 0 first), each with its own step, step time and age.
    public var ranks: [RunsRow]
    /// The run's log, for the overlay of tagged runs.
    public var log: String?

    public init(id: String, name: String, kind: String = "plain", worldSize: Int? = nil, rank: Int? = nil,
                host: String = "", state: String = "running", reason: String? = nil, ended: Bool = false,
                step: Int? = nil, totalSteps: Int? = nil, epoch: Int? = nil, lrs: [Double] = [], groups: [String] = [],
                loss: Double? = nil, lossTrend: [Double] = [], valLoss: Double? = nil, valAcc: Double? = nil,
                stepsPerSecond: Double? = nil, samplesPerSecond: Double? = nil, etaSeconds: Double? = nil,
                gpuPeak: Double? = nil, gpuTotal: Double? = nil, stepAge: Double? = nil, stepTime: Double? = nil,
                ranks: [RunsRow] = [], log: String? = nil) {
        self.id = id; self.name = name; self.kind = kind; self.worldSize = worldSize; self.rank = rank
        self.host = host; self.state = state; self.reason = reason; self.ended = ended
        self.step = step; self.totalSteps = totalSteps; self.epoch = epoch; self.lrs = lrs; self.groups = groups
        self.loss = loss; self.lossTrend = lossTrend; self.valLoss = valLoss; self.valAcc = valAcc
        self.stepsPerSecond = stepsPerSecond; self.samplesPerSecond = samplesPerSecond; self.etaSeconds = etaSeconds
        self.gpuPeak = gpuPeak; self.gpuTotal = gpuTotal; self.stepAge = stepAge; self.stepTime = stepTime
        self.ranks = ranks; self.log = log
    }

    /// How many times its median step time a run may go without a step before it is flagged.
    public static let stallFactor = 5.0
    /// And at least this many seconds: the age is known to about a second (a status comes every half second and
    /// is read once a second), so a loop of 50 ms steps is not flagged between two statuses.
    public static let stallFloor = 3.0

    /// No step for `stallFactor` times its median step time (and `stallFloor` seconds) while it should be stepping.
    public var isStalled: Bool {
        guard !ended, state == "running", let age = stepAge, let t = stepTime, t > 0 else { return false }
        return age > max(Self.stallFactor * t, Self.stallFloor)
    }

    /// A DDP job, expandable into its ranks.
    public var isJob: Bool { (worldSize ?? 1) > 1 && rank == nil }
}

/// The rank rows of a job as the table shows them: step time mean / max over the ranks, and each rank's skew to the
/// fastest one (its step time over the fastest rank's, minus one).
public struct RankSpread: Equatable, Sendable {
    public var meanStepTime: Double
    public var maxStepTime: Double
    public var fastest: Double

    public init?(_ ranks: [RunsRow]) {
        let times = ranks.compactMap(\.stepTime).filter { $0.isFinite && $0 > 0 }
        guard let lo = times.min(), let hi = times.max() else { return nil }
        meanStepTime = times.reduce(0, +) / Double(times.count); maxStepTime = hi; fastest = lo
    }

    /// "+12%": how much slower a rank is than the fastest.
    public func skew(of rank: RunsRow) -> String? {
        guard let t = rank.stepTime, t > 0 else { return nil }
        return "+" + Format.fixed((t / fastest - 1) * 100, 0) + "%"
    }
}

/// What a run answered to a command sent from the table.
public struct RunsAnswer: Equatable, Sendable {
    public var id: String
    public var ok: Bool
    /// The applied result ("lr 5.00e-4") or the reason it was refused.
    public var message: String
    public init(id: String, ok: Bool, message: String) { self.id = id; self.ok = ok; self.message = message }
}

/// The threads of one process (one rank) as a run reported them.
public struct RunsThreadStack: Equatable, Sendable {
    public struct Frame: Equatable, Sendable {
        public var file: String
        public var line: Int
        public var function: String
        public var code: String?
        public init(file: String, line: Int, function: String, code: String? = nil) {
            self.file = file; self.line = line; self.function = function; self.code = code
        }
    }
    public var name: String
    public var isMain: Bool
    /// A Swift trainer: what its thread is doing now and for how long.
    public var phase: String?
    /// Outermost first, innermost last (traceback order).
    public var frames: [Frame]
    public init(name: String, isMain: Bool = false, phase: String? = nil, frames: [Frame] = []) {
        self.name = name; self.isMain = isMain; self.phase = phase; self.frames = frames
    }
}

/// The stacks of a run: one entry per rank that answered (or the reason it could not).
public struct RunsStacks: Equatable, Sendable {
    public var id: String
    public var rank: Int
    public var threads: [RunsThreadStack]
    public var error: String?
    public init(id: String, rank: Int = 0, threads: [RunsThreadStack] = [], error: String? = nil) {
        self.id = id; self.rank = rank; self.threads = threads; self.error = error
    }
}

/// What the runs table is drawn from and acts on: the lrtop target adapts the fleet of live runs to it.
/// Every call returns at once; answers arrive later through `drainAnswers` and `drainStacks`.
public protocol RunsSource: AnyObject {
    /// The runs now (jobs with their ranks), in any order.
    func snapshot() -> [RunsRow]
    /// Sends one steering command, as typed, to each run (a job's rank 0).
    func send(_ command: String, to ids: [String])
    /// Answers that arrived since the last call.
    func drainAnswers() -> [RunsAnswer]
    /// Asks a run (every rank of a job) for its threads' stacks.
    func requestStacks(of id: String)
    func drainStacks() -> [RunsStacks]
    /// The attach dashboard of one run, shown in place of the table until it is closed; nil with a reason.
    func dashboard(for id: String) -> Result<RunsChild, RunsSourceError>
    /// One dashboard overlaying the runs' loss and LR, following their logs.
    func overlay(of ids: [String]) -> Result<RunsChild, RunsSourceError>
}

/// Why a dashboard could not be opened, in one line.
public struct RunsSourceError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A dashboard opened from the table, and what to do when the person goes back to the table (detach).
public struct RunsChild {
    public var dashboard: Dashboard
    public var close: () -> Void
    public init(dashboard: Dashboard, close: @escaping () -> Void) { self.dashboard = dashboard; self.close = close }
}
