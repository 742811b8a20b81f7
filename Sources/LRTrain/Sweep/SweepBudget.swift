import Foundation
import LRLog

/// What a sweep would cost before it starts, from its size, the halving plan, a measured step and the size of
/// a trial's log and checkpoints; and the limits a sweep must stay under. A size typed by mistake
/// (`--lr 1e-4..1e-2:log:1000000`, `--seeds 1000000`) is refused up front with the time and disk it would take,
/// instead of spinning for minutes, filling the disk or trapping. Figures are in Double: the sizes asked for can
/// be far beyond what an Int counts.
public struct SweepBudget: Sendable, Equatable {
    /// Trials (configurations × seeds) one sweep may train: each is a run with its own log and checkpoints, and the
    /// table and halving are about comparing a few hundred, not a million.
    public static let maxTrials = 10_000
    /// The longest a sweep may be estimated to train, in seconds (30 days): longer is a typo, not a plan.
    public static let maxSeconds = 30.0 * 86_400

    public var trials: Double
    /// Optimizer steps over every trial and rung, with halving.
    public var steps: Double
    public var seconds: Double
    public var bytes: Double
    public var cost: TrialCost

    /// What one trial's run costs, measured on the sweep's data and model before it starts.
    public struct TrialCost: Sendable, Equatable {
        public var stepSeconds: Double
        /// One evaluation on the test split.
        public var evalSeconds: Double
        public var checkpointBytes: Double
        /// A step record in the log (about 200 bytes for one param group).
        public var logBytesPerStep: Double
        public init(stepSeconds: Double, evalSeconds: Double, checkpointBytes: Double, logBytesPerStep: Double) {
            self.stepSeconds = stepSeconds; self.evalSeconds = evalSeconds
            self.checkpointBytes = checkpointBytes; self.logBytesPerStep = logBytesPerStep
        }
    }

    /// - evalEvery: steps between evaluations (each rung's end and each epoch's also evaluate);
    ///   checkpointsKept: automatic checkpoints a trial keeps on disk (0 without `--checkpoint-every`).
    public init(budgets: [Int], eta: Int, configurations: Double, seeds: Double, cost: TrialCost, evalEvery: Int,
                stepsPerEpoch: Int, checkpointsKept: Int, jobs: Int) {
        self.cost = cost
        var alive = configurations, previous = 0.0, steps = 0.0, trialRungs = 0.0
        for b in budgets {
            steps += alive * seeds * (Double(b) - previous)
            trialRungs += alive * seeds
            previous = Double(b)
            alive = max(1, (alive / Double(eta)).rounded(.down))
        }
        let evals = steps / Double(max(1, evalEvery)) + steps / Double(max(1, stepsPerEpoch)) + trialRungs
        trials = configurations * seeds
        self.steps = steps
        seconds = (steps * cost.stepSeconds + evals * cost.evalSeconds) / Double(max(1, jobs))
        // A final checkpoint at the end of every rung a trial trains, plus the automatic ones it keeps.
        let checkpoints = trialRungs + trials * Double(checkpointsKept)
        bytes = steps * cost.logBytesPerStep + checkpoints * cost.checkpointBytes
    }

    /// "about 2 h 10 min of training and 1.2 GB of disk".
    public var summary: String {
        "about \(Self.duration(seconds)) of training and \(Self.size(bytes)) of disk"
    }

    /// Refuses a sweep over a limit, in one line naming the size, the figures and what to change. `freeBytes`:
    /// what the sweep folder's file system has free (nil: unknown).
    public func check(freeBytes: Double?, folder: String) throws(SweepError) {
        let size = "\(Self.count(trials)) trials (\(Self.count(steps)) steps: \(summary))"
        let narrow = "narrow --lr, --warmup, --sched, --optimizer or --seeds"
        if trials > Double(Self.maxTrials) {
            throw SweepError("a sweep of \(size) is over the limit of \(Self.count(Double(Self.maxTrials))) trials: \(narrow)")
        }
        if seconds > Self.maxSeconds {
            throw SweepError("a sweep of \(size) would train for longer than 30 days: \(narrow), or train fewer --epochs")
        }
        if let freeBytes, bytes > freeBytes {
            throw SweepError("a sweep of \(size) needs more disk than the \(Self.size(freeBytes)) free on the file system of "
                + "\(folder): free some space, choose another --sweep-dir, or \(narrow)")
        }
    }

    /// Free bytes on the file system that holds `path` (or its nearest existing folder), for this user.
    public static func freeBytes(at path: String) -> Double? {
        var p = path.isEmpty ? "." : path
        var st = statvfs()
        while statvfs(p, &st) != 0 {
            let parent = (p as NSString).deletingLastPathComponent
            let next = parent.isEmpty ? "." : parent
            if next == p { return nil }
            p = next
        }
        return Double(st.f_bavail) * Double(st.f_frsize)
    }

    static func count(_ v: Double) -> String {
        v < 1e15 ? Int(v).formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) : String(format: "%.1e", v)
    }

    static func size(_ v: Double) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var x = v, i = 0
        while x >= 1000 && i < units.count - 1 { x /= 1000; i += 1 }
        if i == units.count - 1 && x >= 1000 { return String(format: "%.1e bytes", v) }
        return i == 0 ? "\(Int(v)) bytes" : String(format: x < 10 ? "%.1f %@" : "%.0f %@", x, units[i])
    }

    static func duration(_ s: Double) -> String {
        switch s {
        case ..<60: return String(format: "%.0f s", max(1, s))
        case ..<3600: return String(format: "%.0f min", s / 60)
        case ..<86_400: return String(format: "%.0f h %.0f min", (s / 3600).rounded(.down), (s.truncatingRemainder(dividingBy: 3600) / 60).rounded(.down))
        case ..<(86_400 * 365): return String(format: "%.1f days", s / 86_400)
        case ..<(86_400 * 365 * 10_000): return String(format: "%.1f years", s / (86_400 * 365))
        default: return String(format: "%.1e years", s / (86_400 * 365))
        }
    }
}

extension Trainer {
    /// Measures what a trial of this run costs: a few training steps timed (after one that allocates the
    /// optimizer's state), an evaluation estimated from them, and a checkpoint's size from the state they made.
    /// Trains the steps for real: call it on a probe trainer that is thrown away.
    public func measureTrialCost(steps: Int = 3) -> SweepBudget.TrialCost {
        _ = timeSteps(1)
        let stepSeconds = timeSteps(steps) / Double(steps)
        // An evaluation is a forward pass over the test split: about a third of a training step per batch.
        let evalBatches = Double(test.count) / Double(max(1, config.batchSize * config.accumSteps))
        let (_, tensors) = snapshot(label: "probe")
        let floats = tensors.values.reduce(0) { $0 + $1.count }
        return SweepBudget.TrialCost(stepSeconds: stepSeconds, evalSeconds: stepSeconds * evalBatches / 3,
                                     checkpointBytes: Double(floats * 4 + 8192),
                                     logBytesPerStep: 180 + 24 * Double(optimizer.groups.count))
    }
}
