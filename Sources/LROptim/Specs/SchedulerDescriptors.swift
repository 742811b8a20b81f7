import Foundation

// One descriptor per scheduler kind: its names, its options with their defaults and help, and how to build it.
// The factory, the spec parser's errors, the docs' and README's tables, the `s` menu and spec/schedulers.json
// (which the Python bridge reads) all come from `SchedulerFactory.descriptors`; nothing else lists a default.

/// One option a scheduler kind accepts, under PyTorch's name.
public struct SchedulerOption: Sendable {
    public enum ValueType: String, Sendable, Codable {
        case integer, number, bool, choice
        /// Integers separated by `/`: `milestones=30/80`.
        case integerList = "integer_list"
        /// Numbers separated by `/` (one per group, or one for all): `min_lr=1e-5/1e-6`.
        case numberList = "number_list"
    }

    public enum Default: Sendable, Equatable {
        /// The spec must give it.
        case required
        /// A fixed value (PyTorch's default, checked by a test against torch's signatures).
        case number(Double)
        case flag(Bool)
        /// A word of `choices`.
        case word(String)
        /// The scheduler steps left from where this part starts (PyTorch has its own default or none).
        case restOfRun
        /// Computed from something else; the text says from what (`each group's LR`, `1/steps`).
        case derived(String)
    }

    /// What the `s` menu fills in for an option the spec must give, sized to the steps left.
    public enum Suggestion: Sendable, Equatable {
        /// Fractions of the steps left, joined by `/` (`[0.5, 0.75]` → `500/750` with 1,000 left).
        case fractionsOfRest([Double])
        case text(String)
    }

    public let key: String
    public let type: ValueType
    public let defaultValue: Default
    /// One short line for the `s` menu and the tables.
    public let help: String
    /// The words a `choice` accepts, the default first.
    public let choices: [String]
    public let suggestion: Suggestion?
    /// The only value lrtop supports differs from PyTorch's default (`cycle_momentum`): the spec may give the
    /// supported value, the menu leaves it out.
    public let fixed: Bool

    public init(_ key: String, _ type: ValueType, _ defaultValue: Default, help: String, choices: [String] = [],
                suggestion: Suggestion? = nil, fixed: Bool = false) {
        self.key = key; self.type = type; self.defaultValue = defaultValue; self.help = help; self.choices = choices
        self.suggestion = suggestion; self.fixed = fixed
    }

    /// The default as it reads in the tables and the menu: `0.1`, `1/3`, `cos`, `false`, `required`, `rest of run`.
    public var defaultText: String {
        switch defaultValue {
        case .required: return "required"
        case .number(let x): return readableNumber(x)
        case .flag(let b): return b ? "true" : "false"
        case .word(let w): return w
        case .restOfRun: return "rest of run"
        case .derived(let text): return text
        }
    }
}

extension SchedulerOption {
    /// `onecycle` and `cyclic` schedule the LR only: momentum cycling is off (PyTorch's default is on).
    static let cycleMomentumOff = SchedulerOption("cycle_momentum", .bool, .flag(false), help: "false only (PyTorch: true)",
                                                  fixed: true)
}

/// What the factory knows about one scheduler kind.
public struct SchedulerDescriptor: Sendable {
    /// The CLI name: `cosine`.
    public let name: String
    /// Other accepted names: short aliases and the PyTorch class name (`CosineAnnealingLR`).
    public let aliases: [String]
    /// The `torch.optim.lr_scheduler` class it reproduces, when there is one.
    public let reference: String?
    /// The class whose constructor the options and defaults follow (nil for lrtop's own `constant`, `warmup`).
    public let signatureClass: String?
    /// One line: what it does.
    public let summary: String
    public let options: [SchedulerOption]
    /// The option that gives its length when it is a part of `A -> B`; nil when it has none.
    public let lengthKey: String?
    /// Stepped with a metric (`plateau`): it cannot be a part of a `->` sequence.
    public let needsMetric: Bool
    let build: @Sendable (_ arguments: SchedulerArguments) throws -> SchedulerBase

    init(_ name: String, aliases: [String] = [], reference: String?, followsReference: Bool = true, summary: String,
         options: [SchedulerOption], lengthKey: String? = nil, needsMetric: Bool = false,
         build: @escaping @Sendable (_ arguments: SchedulerArguments) throws -> SchedulerBase) {
        self.name = name; self.aliases = aliases; self.reference = reference
        self.signatureClass = followsReference ? reference : nil; self.summary = summary; self.options = options
        self.lengthKey = lengthKey; self.needsMetric = needsMetric; self.build = build
    }

    /// The keys a spec may give.
    public var keys: [String] { options.map(\.key) }

    public func option(_ key: String) -> SchedulerOption? { options.first { $0.key == key } }
}

/// A spec item's options read against its descriptor: a value the spec gives, else the descriptor's default.
struct SchedulerArguments {
    let descriptor: SchedulerDescriptor
    let reader: OptionReader
    let groups: [ParamGroup]
    let baseLRs: [Double]
    /// Scheduler steps left from where this part starts (`restOfRun` defaults).
    let remaining: Int

    init(_ d: SchedulerDescriptor, item: SpecItem, groups: [ParamGroup], baseLRs: [Double], remaining: Int) throws {
        descriptor = d
        reader = try OptionReader(owner: d.name, options: item.options, valid: d.keys)
        self.groups = groups; self.baseLRs = baseLRs; self.remaining = remaining
    }

    private func declared(_ key: String) -> SchedulerOption {
        guard let o = descriptor.option(key) else { preconditionFailure("\(descriptor.name) declares no option \(key)") }
        return o
    }

    private func missing(_ key: String) -> OptimError { OptimError("\(descriptor.name): missing parameter '\(key)'") }

    /// The value given, else the default: `restOfRun` gives the steps left; `required` throws; `derived`
    /// returns nil for the caller to compute.
    func double(_ key: String) throws -> Double? {
        if let v = try reader.double(key) { return v }
        switch declared(key).defaultValue {
        case .number(let x): return x
        case .required: throw missing(key)
        case .restOfRun: return Double(try restOfRun(key))
        default: return nil
        }
    }

    func int(_ key: String) throws -> Int? {
        if let v = try reader.int(key) { return v }
        switch declared(key).defaultValue {
        case .number(let x): return Int(x)
        case .required: throw missing(key)
        case .restOfRun: return try restOfRun(key)
        default: return nil
        }
    }

    func bool(_ key: String) throws -> Bool {
        guard case .flag(let def) = declared(key).defaultValue else { preconditionFailure("\(key) is not a flag") }
        return try reader.bool(key, default: def)
    }

    func choice(_ key: String) throws -> String {
        let o = declared(key)
        guard case .word(let def) = o.defaultValue else { preconditionFailure("\(key) is not a choice") }
        return try reader.choice(key, o.choices, default: def)
    }

    func intList(_ key: String) throws -> [Int] {
        if let v = try reader.intList(key) { return v }
        throw missing(key)
    }

    func doubleList(_ key: String) throws -> [Double]? {
        if let v = try reader.doubleList(key) { return v }
        if case .number(let x) = declared(key).defaultValue { return [x] }
        return nil
    }

    private func restOfRun(_ key: String) throws -> Int {
        guard remaining > 0 else {
            throw OptimError("\(descriptor.name): no steps left for the default \(key) (the run has ended); give \(key)=N")
        }
        return remaining
    }

    /// The kinds that schedule the LR only: a `cycle_momentum` other than false is refused.
    func noMomentumCycling() throws {
        if try reader.bool("cycle_momentum", default: false) {
            throw OptimError("\(descriptor.name): cycle_momentum=true is not supported (lrtop schedules the LR only)")
        }
    }
}

extension SchedulerFactory {
    /// Every scheduler kind, in the order the help, the tables and the `s` menu list them.
    public static let descriptors: [SchedulerDescriptor] = [
        SchedulerDescriptor(
            "constant", aliases: ["none"], reference: nil, summary: "keep the LR as it is; never writes it",
            options: []) { a in ConstantSchedule(groups: a.groups, baseLRs: a.baseLRs) },
        SchedulerDescriptor(
            "constantlr", aliases: ["ConstantLR"], reference: "ConstantLR",
            summary: "multiply the LR by factor until total_iters, then restore it",
            options: [
                SchedulerOption("factor", .number, .number(1.0 / 3), help: "the multiplier, in (0, 1]"),
                SchedulerOption("total_iters", .integer, .number(5), help: "steps at the lower LR"),
            ], lengthKey: "total_iters") { a in
            try ConstantLRSchedule(groups: a.groups, baseLRs: a.baseLRs, factor: a.double("factor")!,
                                   totalIters: a.int("total_iters")!)
        },
        SchedulerDescriptor(
            "step", aliases: ["StepLR"], reference: "StepLR", summary: "multiply the LR by gamma every step_size steps",
            options: [
                SchedulerOption("step_size", .integer, .required, help: "steps between decays",
                                suggestion: .fractionsOfRest([1.0 / 3])),
                SchedulerOption("gamma", .number, .number(0.1), help: "the decay factor"),
            ]) { a in
            try StepLRSchedule(groups: a.groups, baseLRs: a.baseLRs, stepSize: a.int("step_size")!, gamma: a.double("gamma")!)
        },
        SchedulerDescriptor(
            "multistep", aliases: ["MultiStepLR"], reference: "MultiStepLR",
            summary: "multiply the LR by gamma at each milestone",
            options: [
                SchedulerOption("milestones", .integerList, .required, help: "steps, separated by / (30/80)",
                                suggestion: .fractionsOfRest([0.5, 0.75])),
                SchedulerOption("gamma", .number, .number(0.1), help: "the decay factor"),
            ]) { a in
            MultiStepLRSchedule(groups: a.groups, baseLRs: a.baseLRs, milestones: try a.intList("milestones"),
                                gamma: try a.double("gamma")!)
        },
        SchedulerDescriptor(
            "exp", aliases: ["exponential", "ExponentialLR"], reference: "ExponentialLR",
            summary: "multiply the LR by gamma every step",
            options: [SchedulerOption("gamma", .number, .required, help: "the factor per step",
                                      suggestion: .text("0.999"))]) { a in
            ExponentialLRSchedule(groups: a.groups, baseLRs: a.baseLRs, gamma: try a.double("gamma")!)
        },
        SchedulerDescriptor(
            "cosine", aliases: ["CosineAnnealingLR"], reference: "CosineAnnealingLR",
            summary: "cosine annealing from the LR to eta_min over T_max steps",
            options: [
                SchedulerOption("T_max", .integer, .restOfRun, help: "steps to the minimum"),
                SchedulerOption("eta_min", .number, .number(0), help: "the minimum LR"),
            ], lengthKey: "T_max") { a in
            try CosineAnnealingLRSchedule(groups: a.groups, baseLRs: a.baseLRs, tMax: a.int("T_max")!,
                                          etaMin: a.double("eta_min")!)
        },
        SchedulerDescriptor(
            "warm_restarts", aliases: ["cosine_restarts", "CosineAnnealingWarmRestarts"],
            reference: "CosineAnnealingWarmRestarts", summary: "cosine annealing with warm restarts (SGDR)",
            options: [
                SchedulerOption("T_0", .integer, .required, help: "steps of the first cycle",
                                suggestion: .fractionsOfRest([0.25])),
                SchedulerOption("T_mult", .integer, .number(1), help: "cycle length factor"),
                SchedulerOption("eta_min", .number, .number(0), help: "the minimum LR"),
            ]) { a in
            try WarmRestartsSchedule(groups: a.groups, baseLRs: a.baseLRs, t0: a.int("T_0")!, tMult: a.int("T_mult")!,
                                     etaMin: a.double("eta_min")!)
        },
        SchedulerDescriptor(
            "linear", aliases: ["LinearLR"], reference: "LinearLR",
            summary: "scale the LR linearly from start_factor to end_factor",
            options: [
                SchedulerOption("start_factor", .number, .number(1.0 / 3), help: "the factor at the start"),
                SchedulerOption("end_factor", .number, .number(1), help: "the factor at the end"),
                SchedulerOption("total_iters", .integer, .number(5), help: "steps of the ramp"),
            ], lengthKey: "total_iters") { a in
            try LinearLRSchedule(groups: a.groups, baseLRs: a.baseLRs, startFactor: a.double("start_factor")!,
                                 endFactor: a.double("end_factor")!, totalIters: a.int("total_iters")!)
        },
        SchedulerDescriptor(
            "warmup", reference: "LinearLR", followsReference: false,
            summary: "linear warmup: base·(k+1)/steps at step k, then the base",
            options: [
                SchedulerOption("steps", .integer, .required, help: "steps of the warmup",
                                suggestion: .fractionsOfRest([0.1])),
                SchedulerOption("start_factor", .number, .derived("1/steps"), help: "the factor at step 0"),
            ], lengthKey: "steps") { a in
            let steps = try a.int("steps")!
            guard steps >= 1 else { throw OptimError("warmup: steps must be a positive integer (got \(steps))") }
            return try LinearLRSchedule(groups: a.groups, baseLRs: a.baseLRs,
                                        startFactor: a.double("start_factor") ?? 1.0 / Double(steps),
                                        endFactor: 1.0, totalIters: steps - 1, warmupSteps: steps)
        },
        SchedulerDescriptor(
            "poly", aliases: ["polynomial", "PolynomialLR"], reference: "PolynomialLR",
            summary: "polynomial decay to 0 over total_iters steps",
            options: [
                SchedulerOption("total_iters", .integer, .restOfRun, help: "steps to 0 (PyTorch: 5)"),
                SchedulerOption("power", .number, .number(1), help: "the exponent"),
            ], lengthKey: "total_iters") { a in
            try PolynomialLRSchedule(groups: a.groups, baseLRs: a.baseLRs, totalIters: a.int("total_iters")!, power: a.double("power")!)
        },
        SchedulerDescriptor(
            "onecycle", aliases: ["OneCycleLR"], reference: "OneCycleLR",
            summary: "one cycle: up to max_lr, then down far below the start",
            options: [
                SchedulerOption("max_lr", .number, .derived("each group's LR"), help: "the peak LR"),
                SchedulerOption("total_steps", .integer, .restOfRun, help: "length of the cycle"),
                SchedulerOption("pct_start", .number, .number(0.3), help: "fraction spent rising"),
                SchedulerOption("anneal_strategy", .choice, .word("cos"), help: "the shape",
                                choices: ["cos", "linear"]),
                SchedulerOption("div_factor", .number, .number(25), help: "start = max_lr/div_factor"),
                SchedulerOption("final_div_factor", .number, .number(1e4), help: "end = start/this"),
                SchedulerOption("three_phase", .bool, .flag(false), help: "down to the start first"),
                .cycleMomentumOff,
            ], lengthKey: "total_steps") { a in
            try a.noMomentumCycling()
            return try OneCycleSchedule(groups: a.groups, baseLRs: a.baseLRs, maxLR: a.double("max_lr"),
                                        totalSteps: a.int("total_steps")!, pctStart: a.double("pct_start")!,
                                        annealStrategy: a.choice("anneal_strategy"), divFactor: a.double("div_factor")!,
                                        finalDivFactor: a.double("final_div_factor")!, threePhase: a.bool("three_phase"))
        },
        SchedulerDescriptor(
            "cyclic", aliases: ["CyclicLR"], reference: "CyclicLR",
            summary: "cycles between base_lr and max_lr (triangular)",
            options: [
                SchedulerOption("base_lr", .number, .derived("each group's LR"), help: "the lower LR"),
                SchedulerOption("max_lr", .number, .required, help: "the upper LR"),
                SchedulerOption("step_size_up", .integer, .number(2000), help: "steps going up"),
                SchedulerOption("step_size_down", .integer, .derived("step_size_up"), help: "steps going down"),
                SchedulerOption("mode", .choice, .word("triangular"), help: "the policy",
                                choices: ["triangular", "triangular2", "exp_range"]),
                SchedulerOption("gamma", .number, .number(1), help: "exp_range's factor"),
                .cycleMomentumOff,
            ]) { a in
            try a.noMomentumCycling()
            return try CyclicSchedule(groups: a.groups, baseLRs: a.baseLRs, baseLR: a.double("base_lr"),
                                      maxLR: a.double("max_lr")!, stepSizeUp: a.int("step_size_up")!,
                                      stepSizeDown: a.int("step_size_down"), mode: a.choice("mode"),
                                      gamma: a.double("gamma")!)
        },
        SchedulerDescriptor(
            "plateau", aliases: ["ReduceLROnPlateau"], reference: "ReduceLROnPlateau",
            summary: "multiply the LR by factor when --plateau-metric stops improving",
            options: [
                SchedulerOption("mode", .choice, .word("min"), help: "min for losses, max for accuracy",
                                choices: ["min", "max"]),
                SchedulerOption("factor", .number, .number(0.1), help: "the decay factor"),
                SchedulerOption("patience", .integer, .number(10), help: "evaluations to wait"),
                SchedulerOption("threshold", .number, .number(1e-4), help: "what counts as better"),
                SchedulerOption("threshold_mode", .choice, .word("rel"), help: "relative or absolute",
                                choices: ["rel", "abs"]),
                SchedulerOption("cooldown", .integer, .number(0), help: "evaluations after a cut"),
                SchedulerOption("min_lr", .numberList, .number(0), help: "lower bound (or one per group)"),
                SchedulerOption("eps", .number, .number(1e-8), help: "smallest change applied"),
            ], needsMetric: true) { a in
            let minLR = try a.doubleList("min_lr")!
            let minLRs = minLR.count == 1 ? a.groups.map { _ in minLR[0] } : minLR
            return try PlateauSchedule(groups: a.groups, baseLRs: a.baseLRs, mode: a.choice("mode"),
                                       factor: a.double("factor")!, patience: a.int("patience")!,
                                       threshold: a.double("threshold")!, thresholdMode: a.choice("threshold_mode"),
                                       cooldown: a.int("cooldown")!, minLRs: minLRs, eps: a.double("eps")!)
        },
    ]
}

/// A default as a person reads it: `1/3` rather than 0.3333333333333333, `1e-4` rather than 0.0001.
func readableNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e4 { return specNumber(x) }
    let e = Int(log10(abs(x)).rounded())
    if abs(e) >= 4, Double("1e\(e)") == abs(x) { return (x < 0 ? "-" : "") + "1e\(e)" }
    let plain = specNumber(x)
    if plain.count <= 8 { return plain }
    for d in 2...9 {
        let n = x * Double(d)
        if n == n.rounded(), abs(n) < 1e4 { return "\(Int(n))/\(d)" }
    }
    return plain
}
