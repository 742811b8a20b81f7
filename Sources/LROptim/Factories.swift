import Foundation
import LRTensor

// Construction from the text syntax shared by the CLI, the config file and the TUI prompt.
// The syntax is documented in docs/optimizers.md.

/// What a schedule needs to know about the run to fill in defaults (cosine without `T_max` spans the run).
///
/// Use the scheduler's own unit: optimizer steps when the trainer steps the scheduler per optimizer step,
/// epochs when per epoch. When a scheduler replaces another mid-run, pass the steps that remain.
public struct ScheduleContext: Sendable {
    /// Scheduler steps in the whole run (optimizer steps, or epochs when stepping per epoch).
    public var totalSteps: Int
    /// Scheduler steps per epoch (1 when stepping per epoch).
    public var stepsPerEpoch: Int
    public init(totalSteps: Int, stepsPerEpoch: Int) {
        self.totalSteps = totalSteps; self.stepsPerEpoch = stepsPerEpoch
    }
}

// MARK: - Optimizers

/// A parsed optimizer spec: `adamw:lr=1e-3,weight_decay=0.01,betas=0.9/0.999,amsgrad=true`.
public struct OptimizerSpec: Equatable, Sendable, CustomStringConvertible {
    public var item: SpecItem
    public var name: String { item.name }

    /// Parses and checks the name and the keys (values are checked when the optimizer is built).
    public init(parsing text: String) throws {
        item = try SpecItem.parse(text, what: "optimizer")
        let d = try OptimizerFactory.descriptor(named: item.name)
        item.name = d.name
        var scratch = d.defaultHyper
        _ = try d.apply(item.options, to: &scratch)
    }

    public var description: String { item.text }
}

/// Builds optimizers by CLI name.
public enum OptimizerFactory {
    /// Every optimizer, in the order the help lists them.
    public static let descriptors: [OptimizerDescriptor] = [
        SGD.kind, Adam.kind, AdamW.decoupledKind, Adagrad.kind, RMSprop.kind,
        AdaBound.kind, AdaBound.amsboundKind, Lamb.kind, RAdam.kind, NAdam.kind,
        Adamax.kind, Adadelta.kind, Lion.kind,
    ]

    /// The CLI names: `sgd, adam, adamw, ...`.
    public static var names: [String] { descriptors.map(\.name) }

    /// The descriptor for a CLI name (case-insensitive); the error lists the valid names.
    public static func descriptor(named name: String) throws -> OptimizerDescriptor {
        let key = name.lowercased()
        guard let d = descriptors.first(where: { $0.name == key }) else {
            throw OptimError("unknown optimizer '\(name)' (valid: \(names.joined(separator: ", ")))")
        }
        return d
    }

    /// Builds an optimizer from CLI strings: a spec (`adamw:lr=1e-3,weight_decay=0.01`), param-group rules
    /// (`head.*:lr_scale=2`, `no_decay_bias_norm`) and the model's parameters.
    public static func make(spec: String, rules: [String] = [], parameters: [Parameter]) throws -> OptimizerBase {
        try make(spec: OptimizerSpec(parsing: spec), rules: ParamGroupRule.parse(lines: rules), parameters: parameters)
    }

    /// Builds an optimizer from a parsed spec, parsed rules and the parameters.
    public static func make(spec: OptimizerSpec, rules: [ParamGroupRule], parameters: [Parameter]) throws -> OptimizerBase {
        let d = try descriptor(named: spec.name)
        var hyper = d.defaultHyper
        let baseLR = try d.apply(spec.item.options, to: &hyper) ?? d.defaultLR
        let groups = ParamGroupRule.assign(parameters, rules: rules, baseLR: baseLR)
        let specs = groups.map { g in
            GroupSpec(name: g.name, params: g.params, lr: g.lr ?? baseLR, options: spec.item.options + g.options)
        }
        return try make(name: d.name, groups: specs, defaults: spec.item.options)
    }

    /// Builds an optimizer over explicit groups. Each group's options are applied over the descriptor's defaults
    /// in order (later keys win); `GroupSpec.lr`, if set, wins over an `lr` option. `defaults` are the
    /// optimizer-wide options (PyTorch's constructor arguments, `OptimizerBase.defaults`), normally the spec's.
    public static func make(name: String, groups: [GroupSpec],
                            defaults: [(key: String, value: String)] = []) throws -> OptimizerBase {
        let d = try descriptor(named: name)
        var optimizerDefaults = d.defaultHyper
        _ = try d.apply(defaults, to: &optimizerDefaults)
        var built: [ParamGroup] = []
        var seen: Set<String> = []
        for g in groups {
            for p in g.params {
                guard seen.insert(p.name).inserted else {
                    throw OptimError("parameter '\(p.name)' appears twice (parameter names must be unique across groups)")
                }
            }
            var hyper = d.defaultHyper
            var lr: Double?
            // Later occurrences of a key win: apply one key at a time.
            for opt in g.options {
                if let l = try d.apply([opt], to: &hyper) { lr = l }
            }
            let groupLR = g.lr ?? lr ?? d.defaultLR
            try d.validate(lr: groupLR, hyper: hyper)
            built.append(ParamGroup(name: g.name, params: g.params, lr: groupLR, hyper: hyper))
        }
        let optimizer = d.build(built)
        optimizer.defaults = optimizerDefaults
        return optimizer
    }
}

// MARK: - Schedulers

/// Builds schedulers from spec strings.
///
/// Syntax: `name[:key=value,...]`, and sequences `A -> B -> C` (PyTorch's `SequentialLR`): each part starts
/// where the previous one's natural length ends (`warmup:steps`, `linear`/`constantlr`/`poly:total_iters`,
/// `cosine:T_max`, `onecycle:total_steps`), or at an explicit step written `-> @N B`. Defaults that depend on
/// the run (`cosine`'s `T_max`, `onecycle`'s `total_steps`, `poly`'s `total_iters`) span the steps left in
/// `ScheduleContext.totalSteps` from where that part starts.
public enum SchedulerFactory {
    /// The CLI names: `constant, constantlr, step, ...`.
    public static var names: [String] { descriptors.map(\.name) }

    /// The descriptor for a name or alias; the error lists the valid names.
    public static func descriptor(named name: String) throws -> SchedulerDescriptor {
        if let k = descriptors.first(where: { $0.name == name || $0.aliases.contains(name) }) { return k }
        if let k = descriptors.first(where: { $0.name == name.lowercased() || $0.aliases.contains(name.lowercased()) }) { return k }
        throw OptimError("unknown scheduler '\(name)' (valid: \(names.joined(separator: ", ")))")
    }

    /// Builds a scheduler over the optimizer's groups and makes its initial step (which sets the groups' LRs
    /// for step 0, as constructing a PyTorch scheduler does).
    ///
    /// - Parameter baseLRs: the LRs the schedule is relative to. nil: each group's `initialLR` (PyTorch's
    ///   `initial_lr`). Pass the groups' current LRs to continue from where the LR is now, e.g. when the user
    ///   types `sched cosine:T_max=2000` mid-run, so the curve does not jump.
    public static func make(spec: String, optimizer: any Optimizer, context: ScheduleContext,
                            baseLRs: [Double]? = nil) throws -> SchedulerBase {
        try make(spec: spec, groups: optimizer.groups, context: context, baseLRs: baseLRs)
    }

    /// As `make(spec:optimizer:context:baseLRs:)`, over explicit groups.
    public static func make(spec: String, groups: [ParamGroup], context: ScheduleContext,
                            baseLRs: [Double]? = nil) throws -> SchedulerBase {
        let bases = baseLRs ?? groups.map(\.initialLR)
        guard bases.count == groups.count else {
            throw OptimError("\(bases.count) base LRs given for \(groups.count) param groups")
        }
        let segments = try parseSequence(spec)
        if segments.count == 1 {
            let (item, _) = segments[0]
            return try build(item, groups: groups, baseLRs: bases, remaining: context.totalSteps)
        }
        var children: [SchedulerBase] = []
        var starts: [Int] = []
        for (i, (item, at)) in segments.enumerated() {
            var start = 0
            if i > 0 {
                if let at { start = at } else {
                    let prev = children[i - 1]
                    guard let len = prev.length else {
                        throw OptimError("'\(prev.kind)' has no fixed length: write where the next part starts, e.g. '\(segments[i - 1].0.text) -> @100 \(item.text)'")
                    }
                    start = starts[i - 1] + len
                }
                guard start > starts[i - 1] else {
                    throw OptimError("'\(item.text)' starts at step \(start), not after the previous part (step \(starts[i - 1]))")
                }
            }
            let k = try descriptor(named: item.name)
            if k.needsMetric { throw OptimError("\(k.name) cannot be part of a '->' sequence (it needs a metric)") }
            children.append(try build(item, groups: groups, baseLRs: bases, remaining: context.totalSteps - start))
            starts.append(start)
        }
        return SequentialSchedule(groups: groups, baseLRs: bases, children: children, milestones: Array(starts.dropFirst()))
    }

    /// Parses and builds a spec on a scratch group to check it; returns the canonical spec.
    public static func validate(spec: String, context: ScheduleContext) throws -> String {
        let g = ParamGroup(name: "check", params: [], lr: 0.1)
        return try make(spec: spec, groups: [g], context: context).spec
    }

    /// Splits `A -> @N B -> C` into items with their explicit start steps.
    static func parseSequence(_ text: String) throws -> [(SpecItem, Int?)] {
        let parts = text.components(separatedBy: "->")
        var out: [(SpecItem, Int?)] = []
        for (i, raw) in parts.enumerated() {
            var part = raw.trimmingSpaces
            var at: Int?
            if part.hasPrefix("@") {
                guard i > 0 else { throw OptimError("'@N' marks where a later part of a '->' sequence starts; the first starts at 0") }
                let digits = part.dropFirst().prefix { $0.isNumber }
                guard let n = Int(digits) else { throw OptimError("expected a step number after '@' in '\(part)'") }
                at = n
                part = String(part.dropFirst(1 + digits.count)).trimmingSpaces
            }
            guard !part.isEmpty else {
                throw OptimError(parts.count > 1 ? "empty part in scheduler sequence '\(text.trimmingSpaces)'" : "empty scheduler spec")
            }
            out.append((try SpecItem.parse(part, what: "scheduler"), at))
        }
        return out
    }

    static func build(_ item: SpecItem, groups: [ParamGroup], baseLRs: [Double], remaining: Int) throws -> SchedulerBase {
        let d = try descriptor(named: item.name)
        return try d.build(SchedulerArguments(d, item: item, groups: groups, baseLRs: baseLRs, remaining: remaining))
    }
}
