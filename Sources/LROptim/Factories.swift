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
