import Foundation
import LRTensor

/// One hyperparameter an optimizer accepts, under its PyTorch name.
public struct HyperParameter: Sendable {
    public enum Kind: Sendable {
        /// A plain number.
        case number
        /// `true`/`false`, stored in `ParamGroup.hyper` as 1/0.
        case bool
        /// `betas=b1/b2`, stored as `beta1` and `beta2`.
        case betas
        /// A number or `none` (stored as 0, which means off).
        case optionalNumber
    }
    public let key: String
    public let kind: Kind
    public let defaultValue: Double
    /// The second default, for `betas`.
    public let defaultValue2: Double
    public let doc: String

    public init(_ key: String, _ kind: Kind = .number, _ def: Double, _ def2: Double = 0, doc: String) {
        self.key = key; self.kind = kind; self.defaultValue = def; self.defaultValue2 = def2; self.doc = doc
    }

    /// The default as spec text (`0.9/0.999`, `false`, `none`).
    public var defaultText: String {
        switch kind {
        case .number: return "\(defaultValue)"
        case .bool: return defaultValue != 0 ? "true" : "false"
        case .betas: return "\(defaultValue)/\(defaultValue2)"
        case .optionalNumber: return defaultValue == 0 ? "none" : "\(defaultValue)"
        }
    }
}

/// What the factory knows about one optimizer: its CLI name, its hyperparameters and defaults, its
/// validation (with PyTorch's messages) and how to build it over param groups.
public struct OptimizerDescriptor: Sendable {
    /// The CLI name: `adamw`.
    public let name: String
    /// The reference class: `torch.optim.AdamW`.
    public let reference: String
    public let defaultLR: Double
    /// Hyperparameters other than `lr`, in PyTorch's argument order.
    public let parameters: [HyperParameter]
    let check: @Sendable (_ lr: Double, _ hyper: [String: Double]) throws -> Void
    let build: @Sendable (_ groups: [ParamGroup]) -> OptimizerBase

    /// Keys a spec may set: `lr` and every hyperparameter (`betas` may also be set as `beta1`/`beta2`).
    public var validKeys: [String] { ["lr"] + parameters.map(\.key) }

    /// Every hyperparameter at its default, under the keys `ParamGroup.hyper` uses; made once.
    public let defaultHyper: [String: Double]

    init(name: String, reference: String, defaultLR: Double, parameters: [HyperParameter],
         check: @escaping @Sendable (_ lr: Double, _ hyper: [String: Double]) throws -> Void,
         build: @escaping @Sendable (_ groups: [ParamGroup]) -> OptimizerBase) {
        self.name = name; self.reference = reference; self.defaultLR = defaultLR; self.parameters = parameters
        self.check = check; self.build = build
        var h: [String: Double] = [:]
        for p in parameters {
            if p.kind == .betas {
                h[HyperKey.beta1.name] = p.defaultValue; h[HyperKey.beta2.name] = p.defaultValue2
            } else {
                h[p.key] = p.defaultValue
            }
        }
        defaultHyper = h
    }

    /// Validates an LR and a full hyperparameter set with PyTorch's messages.
    public func validate(lr: Double, hyper: [String: Double]) throws { try check(lr, hyper) }

    /// Applies spec options (`lr` included) on top of `hyper`; returns the LR if the options set one.
    func apply(_ options: [(key: String, value: String)], to hyper: inout [String: Double]) throws -> Double? {
        var lr: Double?
        let reader = try OptionReader(owner: name, options: options, valid: validKeys,
                                      hidden: parameters.contains { $0.kind == .betas } ? [HyperKey.beta1.name, HyperKey.beta2.name] : [])
        for (key, value) in options {
            if key == "lr" { lr = try reader.requiredDouble("lr"); continue }
            if key == HyperKey.beta1.name || key == HyperKey.beta2.name { hyper[key] = try reader.requiredDouble(key); continue }
            guard let p = parameters.first(where: { $0.key == key }) else { continue }
            switch p.kind {
            case .number: hyper[key] = try reader.requiredDouble(key)
            case .bool: hyper[key] = try reader.bool(key, default: false) ? 1 : 0
            case .optionalNumber:
                if ["none", "null", "off"].contains(value.lowercased()) { hyper[key] = 0 } else {
                    hyper[key] = try reader.requiredDouble(key)
                }
            case .betas:
                let parts = value.split(separator: "/", omittingEmptySubsequences: false).map { OptionReader.number(String($0)) }
                guard parts.count == 2, let b1 = parts[0], let b2 = parts[1] else {
                    throw OptimError("\(name): invalid value '\(value)' for betas: expected two numbers like 0.9/0.999")
                }
                hyper[HyperKey.beta1.name] = b1; hyper[HyperKey.beta2.name] = b2
            }
        }
        return lr
    }
}

/// A buffer of per-parameter optimizer state (PyTorch's `exp_avg`, `momentum_buffer` ...), declared once by the
/// optimizer that keeps it (its `stateSlots`): the name checkpoints store it under and its place in `ParamState`,
/// so an update reaches it by position, never by looking a string up at every step (mlx-swift's `newState`).
public struct StateSlot: Sendable, Hashable {
    public let name: String
    public let index: Int
    public init(_ index: Int, _ name: String) { self.index = index; self.name = name }

    /// The first and second moments of the Adam family, and AMSGrad's running maximum of the second.
    public static let expAvg = StateSlot(0, "exp_avg")
    public static let expAvgSq = StateSlot(1, "exp_avg_sq")
    public static let maxExpAvgSq = StateSlot(2, "max_exp_avg_sq")
}

/// A number of per-parameter optimizer state besides the step count (NAdam's `mu_product`), declared once like
/// `StateSlot`.
public struct ScalarSlot: Sendable, Hashable {
    public let name: String
    public let index: Int
    public init(_ index: Int, _ name: String) { self.index = index; self.name = name }
}

/// Per-parameter optimizer state: the step count, the buffers of the optimizer's `stateSlots` and the numbers of
/// its `scalarSlots`. Buffers are created on first use (as PyTorch's lazy state) and then updated in place.
public final class ParamState: @unchecked Sendable {
    public var step: Double = 0
    var buffers: [Tensor?]
    var numbers: [Double?]

    init(slots: Int, scalars: Int) {
        buffers = Array(repeating: nil, count: slots)
        numbers = Array(repeating: nil, count: scalars)
    }

    /// The buffer of `slot`, nil before its first use.
    public subscript(slot: StateSlot) -> Tensor? { buffers[slot.index] }

    /// A scalar of the state, nil before it is first set.
    public subscript(slot: ScalarSlot) -> Double? {
        get { numbers[slot.index] }
        set { numbers[slot.index] = newValue }
    }

    /// The buffer of `slot`, created (filled with `fill`) the first time it is asked for.
    @inline(__always)
    func buffer(_ slot: StateSlot, like p: Parameter, fill: Float = 0) -> Tensor {
        if let t = buffers[slot.index] { return t }
        let t = Tensor(shape: p.shape, repeating: fill)
        buffers[slot.index] = t
        return t
    }
}

/// The base class of every optimizer, after mlx-swift's: subclasses supply `update(_:state:group:)` for one
/// parameter; this class keeps the groups, the per-parameter state, snapshot/restore and the summary.
///
/// Hyperparameters are read from `group.hyper` and the LR from `group.lr` at every step, so a scheduler, the
/// keyboard or a config reload can change them between steps. The math is plain loops over the tensors'
/// storage in Float32, in the reference's op order; a steady-state step allocates nothing.
///
/// Not thread-safe: step, snapshot/restore and writes to the groups belong to one thread (the training loop).
open class OptimizerBase: Optimizer, @unchecked Sendable {
    public let descriptor: OptimizerDescriptor
    public var name: String { descriptor.name }
    public let groups: [ParamGroup]
    /// `states[g][i]`: the state of `groups[g].params[i]`.
    public let states: [[ParamState]]
    /// Optimizer-wide hyperparameters (PyTorch's `defaults`: the constructor's arguments): the descriptor's
    /// defaults with the spec's options applied. A few settings are read from here rather than from a group,
    /// as in the reference: Adagrad's `initial_accumulator_value`, LAMB's `max_grad_norm`.
    public var defaults: [String: Double]

    /// The buffers of per-parameter state this optimizer keeps, each at its `index` (a subclass declares them).
    open class var stateSlots: [StateSlot] { [] }
    /// The numbers of per-parameter state besides the step count.
    open class var scalarSlots: [ScalarSlot] { [] }

    /// Fills in each group's missing hyperparameters with the descriptor's defaults, once, so that the update
    /// loops read `group[.key]` and find every key their descriptor declares.
    public required init(groups: [ParamGroup], descriptor: OptimizerDescriptor) {
        let kind = type(of: self)
        precondition(kind.stateSlots.enumerated().allSatisfy { $0.offset == $0.element.index }
                     && kind.scalarSlots.enumerated().allSatisfy { $0.offset == $0.element.index },
                     "\(kind): state slots must be declared in index order")
        self.descriptor = descriptor
        self.groups = groups
        self.states = groups.map { $0.params.map { _ in ParamState(slots: kind.stateSlots.count, scalars: kind.scalarSlots.count) } }
        self.defaults = descriptor.defaultHyper
        for group in groups {
            group.hyper.merge(descriptor.defaultHyper) { given, _ in given }
        }
    }

    /// An optimizer-wide hyperparameter (PyTorch's `defaults`).
    @inline(__always)
    public func optimizerDefault(_ key: HyperKey) -> Double { defaults[key.name] ?? 0 }

    public func step() {
        willStep()
        for (g, group) in groups.enumerated() {
            let st = states[g]
            for (i, p) in group.params.enumerated() { update(p, state: st[i], group: group) }
        }
    }

    /// Called once before the groups are updated (LAMB computes its global gradient norm here).
    open func willStep() {}

    /// Updates one parameter in place from its gradient. Subclasses override.
    open func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        fatalError("\(type(of: self)) must override update(_:state:group:)")
    }

    // MARK: state

    public func stateSnapshot() -> OptimizerState {
        let kind = type(of: self)
        var tensors: [String: [String: [Float]]] = [:]
        var scalars: [String: [String: Double]] = [:]
        for (g, group) in groups.enumerated() {
            for (i, p) in group.params.enumerated() {
                let s = states[g][i]
                var slots: [String: [Float]] = [:]
                for slot in kind.stateSlots { if let t = s[slot] { slots[slot.name] = t.storage } }
                tensors[p.name] = slots
                var sc: [String: Double] = ["step": s.step]
                for slot in kind.scalarSlots { if let v = s[slot] { sc[slot.name] = v } }
                scalars[p.name] = sc
            }
        }
        return OptimizerState(tensors: tensors, scalars: scalars, groupLRs: groups.map(\.lr),
                              groupInitialLRs: groups.map(\.initialLR), groupHypers: groups.map(\.hyper))
    }

    public func restore(_ state: OptimizerState) throws {
        if !state.groupLRs.isEmpty && state.groupLRs.count != groups.count {
            throw OptimError("optimizer state has \(state.groupLRs.count) param groups, this optimizer has \(groups.count)")
        }
        // Check everything before changing anything: a checkpoint's hyperparameters are validated as a spec's are
        // (PyTorch's messages), so a crafted `beta1 = -1` is refused instead of diverging the run.
        for (g, group) in groups.enumerated() where g < state.groupHypers.count {
            let hyper = group.hyper.merging(state.groupHypers[g]) { _, saved in saved }
            do { try descriptor.validate(lr: g < state.groupLRs.count ? state.groupLRs[g] : group.lr, hyper: hyper) } catch {
                throw OptimError("optimizer state of group '\(group.name)': \(error)")
            }
        }
        // Then each slot: one this optimizer keeps, of the parameter's size.
        let kind = type(of: self)
        let slots = Dictionary(uniqueKeysWithValues: kind.stateSlots.map { ($0.name, $0) })
        let scalarSlots = Dictionary(uniqueKeysWithValues: kind.scalarSlots.map { ($0.name, $0) })
        for group in groups {
            for p in group.params {
                for (slot, values) in state.tensors[p.name] ?? [:] {
                    guard slots[slot] != nil else {
                        throw OptimError("optimizer state '\(slot)' of '\(p.name)' is not state \(name) keeps (it keeps \(kind.stateSlots.map(\.name).joined(separator: ", ")))")
                    }
                    guard values.count == p.value.count else {
                        throw OptimError("optimizer state '\(slot)' of '\(p.name)' has \(values.count) values, the parameter has \(p.value.count)")
                    }
                }
                for key in (state.scalars[p.name] ?? [:]).keys where key != "step" && scalarSlots[key] == nil {
                    throw OptimError("optimizer state '\(key)' of '\(p.name)' is not a number \(name) keeps")
                }
            }
        }
        for (g, group) in groups.enumerated() {
            for (i, p) in group.params.enumerated() {
                let s = states[g][i]
                let saved = state.tensors[p.name] ?? [:]
                s.buffers = kind.stateSlots.map { slot in saved[slot.name].map { Tensor(shape: p.shape, storage: $0) } }
                let sc = state.scalars[p.name] ?? [:]
                s.step = sc["step"] ?? 0
                s.numbers = kind.scalarSlots.map { sc[$0.name] }
            }
            if g < state.groupLRs.count { group.lr = state.groupLRs[g] }
            if g < state.groupInitialLRs.count { group.initialLR = state.groupInitialLRs[g] }
            if g < state.groupHypers.count { group.hyper = state.groupHypers[g] }
        }
    }

    // MARK: summary

    /// `adamw lr=0.001 betas=(0.9,0.999) eps=1e-08 weight_decay=0.01` (+ `groups=default,head` when several).
    public var summary: String {
        guard let g = groups.first else { return name }
        var parts = [name, "lr=\(shortNumber(g.lr))"]
        for p in descriptor.parameters {
            switch p.kind {
            case .number: parts.append("\(p.key)=\(shortNumber(g.hyper[p.key] ?? 0))")
            case .optionalNumber:
                let v = g.hyper[p.key] ?? 0
                parts.append("\(p.key)=\(v > 0 ? shortNumber(v) : "none")")
            case .bool: if g.hyper[p.key] ?? 0 != 0 { parts.append(p.key) }
            case .betas: parts.append("betas=(\(shortNumber(g[.beta1])),\(shortNumber(g[.beta2])))")
            }
        }
        if groups.count > 1 { parts.append("groups=" + groups.map(\.name).joined(separator: ",")) }
        return parts.joined(separator: " ")
    }
}

func shortNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e6 { return "\(Int64(x))" }
    if abs(x) >= 1e-3 && abs(x) < 1e6 { return String(format: "%g", x) }
    return String(format: "%.3g", x).replacingOccurrences(of: "e-0", with: "e-")
}

// MARK: - Validation helpers with PyTorch's messages

func checkLR(_ lr: Double) throws {
    if !(0.0 <= lr) { throw OptimError("Invalid learning rate: \(pyRepr(lr))") }
}
func checkEps(_ h: [String: Double]) throws {
    if let e = h[.eps], !(0.0 <= e) { throw OptimError("Invalid epsilon value: \(pyRepr(e))") }
}
func checkBetas(_ h: [String: Double]) throws {
    if let b = h[.beta1], !(0.0 <= b && b < 1.0) { throw OptimError("Invalid beta parameter at index 0: \(pyRepr(b))") }
    if let b = h[.beta2], !(0.0 <= b && b < 1.0) { throw OptimError("Invalid beta parameter at index 1: \(pyRepr(b))") }
}
func checkWeightDecay(_ h: [String: Double]) throws {
    if let w = h[.weightDecay], !(0.0 <= w) { throw OptimError("Invalid weight_decay value: \(pyRepr(w))") }
}
func checkNonNegative(_ h: [String: Double], _ key: HyperKey) throws {
    if let v = h[key], !(0.0 <= v) { throw OptimError("Invalid \(key.name) value: \(pyRepr(v))") }
}

/// PyTorch's `lerp` for one element (CPU kernel): exact at both ends, stable for small and large weights.
@inline(__always)
func lerp(_ a: Float, _ b: Float, _ w: Float) -> Float {
    abs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)
}

/// `withPointer` for a buffer that may not exist (an optional state slot); never aliases another buffer.
@inline(__always)
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    if let t { return t.withPointer { body($0) } }
    return body(nil)
}
