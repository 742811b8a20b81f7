import Foundation
import LROptim

/// What `lrtop sweep` searches: every combination of optimizer, LR, warmup length and scheduler, each trained with
/// every seed.
public struct SearchSpace: Sendable, Equatable {
    public var optimizers: [String]
    public var lrs: [Double]
    public var warmups: [WarmupLength]
    /// Scheduler specs; nil is the train default (the guide's warmup + cosine, sized to the run).
    public var schedulers: [String?]
    public var seeds: [UInt64]

    public init(optimizers: [String], lrs: [Double], warmups: [WarmupLength], schedulers: [String?], seeds: [UInt64]) {
        self.optimizers = optimizers; self.lrs = lrs; self.warmups = warmups; self.schedulers = schedulers
        self.seeds = seeds
    }

    /// The configurations, optimizer slowest and scheduler fastest, numbered from 1.
    public var configurations: [SweepConfiguration] {
        var out: [SweepConfiguration] = []
        for o in optimizers {
            for lr in lrs {
                for w in warmups {
                    for s in schedulers {
                        out.append(SweepConfiguration(number: out.count + 1, optimizer: o, lr: lr, warmup: w, scheduler: s))
                    }
                }
            }
        }
        return out
    }
}

/// A warmup given in optimizer steps (`200`) or epochs (`1ep`, `0.5ep`).
public enum WarmupLength: Sendable, Equatable, CustomStringConvertible {
    case steps(Int)
    case epochs(Double)

    public func steps(stepsPerEpoch: Int) -> Int {
        switch self {
        case .steps(let n): return n
        case .epochs(let e): return Int((e * Double(stepsPerEpoch)).rounded())
        }
    }

    public var description: String {
        switch self {
        case .steps(let n): return "\(n)"
        case .epochs(let e): return (e == e.rounded() ? "\(Int(e))" : "\(e)") + "ep"
        }
    }
}

/// One point of the search space.
public struct SweepConfiguration: Sendable, Equatable {
    public var number: Int
    public var optimizer: String
    public var lr: Double
    public var warmup: WarmupLength
    /// nil: the train default.
    public var scheduler: String?

    /// The scheduler as the table and `sweep.json` name it.
    public var schedulerText: String { scheduler ?? "default" }

    /// `c07`: short, sortable, the same in the table, the folders and sweep.json.
    public var name: String { number < 10 ? "c0\(number)" : "c\(number)" }

    /// How a trial of this configuration is set up over the sweep's base config: the run config, and a warmup
    /// that must be given as the `warmup N` command because the scheduler cannot follow a warmup in a `->`
    /// sequence (plateau learns from a metric).
    public func setup(base: TrainConfig, seed: UInt64, stepsPerEpoch: Int) -> (config: TrainConfig, warmupCommand: Int?) {
        var c = base
        c.optimizer = optimizer
        c.lr = lr
        c.seed = seed
        c.scheduler = scheduler
        let w = warmup.steps(stepsPerEpoch: stepsPerEpoch)
        // The default schedule has a warmup of its own (the CLI refuses --warmup with it).
        guard w > 0, let scheduler else { return (c, nil) }
        if SearchSpaceParser.isMetricDriven(scheduler) { return (c, w) }
        c.scheduler = "warmup:steps=\(w) -> " + scheduler
        return (c, nil)
    }
}

public struct SweepError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The sweep's option syntax: `--lr 1e-4..1e-2:log:5` (or `:lin:N`, or a list `1e-3,3e-4`), `--warmup 0,1ep,3ep`,
/// `--sched cosine,step,'warmup:steps=100 -> cosine'`, `--optimizer adamw,sgd:momentum=0.9`.
public enum SearchSpaceParser {
    static let lrHelp = "expected a number (3e-4), a list (1e-3,3e-4) or a range LOW..HIGH:log:N or LOW..HIGH:lin:N (e.g. 1e-4..1e-2:log:5)"

    /// How many LRs `text` gives, checked as `lrs` checks it but without making them (a count may be anything a
    /// person types: `:log:9223372036854775807`).
    public static func lrCount(_ text: String) throws(SweepError) -> Int {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.contains("..") { return try range(t, text: text).count }
        return try lrs(t).count
    }

    /// A range `LOW..HIGH:log:N` checked, without its values.
    static func range(_ t: String, text: String) throws(SweepError) -> (low: Double, high: Double, log: Bool, count: Int) {
        func fail(_ why: String) -> SweepError { SweepError("invalid --lr '\(text)': \(why)") }
        let parts = t.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let bounds = parts[0].components(separatedBy: "..")
        guard bounds.count == 2, let low = number(bounds[0]), let high = number(bounds[1]) else {
            throw fail(lrHelp)
        }
        guard parts.count == 3, ["log", "lin"].contains(parts[1].lowercased()) else {
            throw fail("a range needs a scale and a count, e.g. \(parts[0]):log:5 or \(parts[0]):lin:5")
        }
        guard let n = Int(parts[2]) else { throw fail("the count '\(parts[2])' is not a whole number") }
        guard n >= 1 else { throw fail("a count of \(n) gives no LR to try: give at least 1") }
        guard low >= 0, high >= 0 else { throw fail("a learning rate cannot be negative") }
        guard low < high || (low == high && n == 1) else {
            throw fail(low == high ? "the range is empty (low = high): give one value instead, e.g. --lr \(bounds[0])"
                       : "the range runs downwards; write it low to high, e.g. \(bounds[1])..\(bounds[0]):\(parts[1]):\(n)")
        }
        let log = parts[1].lowercased() == "log"
        if log && low <= 0 && n > 1 { throw fail("a log range needs a low end above 0, e.g. 1e-5..\(bounds[1]):log:\(n)") }
        return (low, high, log, n)
    }

    /// LR values: a range with a scale and a count, or a comma list of numbers. A count over
    /// `SweepBudget.maxTrials` is refused before any value is made.
    public static func lrs(_ text: String) throws(SweepError) -> [Double] {
        func fail(_ why: String) -> SweepError { SweepError("invalid --lr '\(text)': \(why)") }
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw fail("empty; " + lrHelp) }
        if t.contains("..") {
            let (low, high, log, n) = try range(t, text: text)
            guard n <= SweepBudget.maxTrials else {
                throw fail("\(n) LRs is more than a sweep trains (at most \(SweepBudget.maxTrials) trials in all): give a count like :log:5")
            }
            if n == 1 { return [low] }
            return (0..<n).map { i in
                let f = Double(i) / Double(n - 1)
                let v = log ? exp(Foundation.log(low) + f * (Foundation.log(high) - Foundation.log(low))) : low + f * (high - low)
                return significant(v)
            }
        }
        var out: [Double] = []
        for piece in t.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = number(String(piece)) else { throw fail("'\(piece)' is not a number; " + lrHelp) }
            guard v >= 0 else { throw fail("a learning rate cannot be negative") }
            out.append(v)
        }
        return out
    }

    /// Warmup lengths: steps (`200`) or epochs (`1ep`, `0.5ep`), comma separated.
    public static func warmups(_ text: String) throws(SweepError) -> [WarmupLength] {
        var out: [WarmupLength] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let piece = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if piece.hasSuffix("ep"), let e = Double(piece.dropLast(2)), e.isFinite, e >= 0 {
                out.append(.epochs(e))
            } else if let n = Int(piece), n >= 0 {
                out.append(.steps(n))
            } else {
                throw SweepError("invalid --warmup '\(text)': '\(raw)' is neither a number of steps (200) nor of epochs (1ep, 0.5ep)")
            }
        }
        return out
    }

    /// A comma list of specs, where a comma also separates a spec's own options (`cosine:T_max=2000,eta_min=0`):
    /// a piece that starts with `key=` continues the spec before it. Each of `texts` is one occurrence of the option.
    public static func specs(_ texts: [String], option: String) throws(SweepError) -> [String] {
        var out: [String] = []
        for text in texts {
            var current: [String] = []
            for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
                let piece = raw.trimmingCharacters(in: .whitespaces)
                if !current.isEmpty && startsWithKey(piece) { current.append(piece); continue }
                if !current.isEmpty { out.append(current.joined(separator: ",")) }
                guard !piece.isEmpty else { throw SweepError("invalid --\(option) '\(text)': an empty entry between commas") }
                current = [piece]
            }
            if !current.isEmpty { out.append(current.joined(separator: ",")) }
        }
        return out
    }

    /// `T_max=2000` or `eta_min=0 -> cosine`: an option of the spec before, not a new spec.
    static func startsWithKey(_ piece: String) -> Bool {
        let head = piece.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return !head.isEmpty && piece.dropFirst(head.count).first == "="
    }

    /// Whether a scheduler learns from a metric (plateau), so it cannot come after a warmup in a `->` sequence.
    public static func isMetricDriven(_ spec: String) -> Bool {
        guard let first = spec.components(separatedBy: "->").first,
              let item = try? SpecItem.parse(first, what: "scheduler"),
              let d = try? SchedulerFactory.descriptor(named: item.name) else { return false }
        return d.needsMetric
    }

    /// A bare scheduler name with options the spec must give (`step` needs `step_size`) gets them filled in as the
    /// live `s` menu fills them, sized to the run: `step` → `step:step_size=469` for a run of 1,407 steps.
    public static func filledIn(_ spec: String, totalSteps: Int) -> String {
        guard !spec.contains("->"), let item = try? SpecItem.parse(spec, what: "scheduler"),
              let d = try? SchedulerFactory.descriptor(named: item.name) else { return spec }
        var added: [String] = []
        for o in d.options where !item.options.contains(where: { $0.key == o.key }) {
            guard case .required = o.defaultValue, case .fractionsOfRest(let fractions)? = o.suggestion else { continue }
            added.append(o.key + "=" + fractions.map { "\(max(1, Int(Double(totalSteps) * $0)))" }.joined(separator: "/"))
        }
        guard !added.isEmpty else { return spec }
        return spec + (item.options.isEmpty && !spec.contains(":") ? ":" : ",") + added.joined(separator: ",")
    }

    static func number(_ s: String) -> Double? {
        guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v.isFinite else { return nil }
        return v
    }

    /// Rounded to 3 significant digits, so a log range gives 1e-4, 3.16e-4, 1e-3 and the table, the folders and
    /// the reproducing line all show the value that was trained.
    static func significant(_ v: Double) -> Double {
        guard v > 0 else { return v }
        let mag = Foundation.pow(10, (Foundation.log10(v)).rounded(.down) - 2)
        return Double("\((v / mag).rounded())e\(Int(Foundation.log10(mag).rounded()))") ?? v
    }
}
