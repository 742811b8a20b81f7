import Foundation
import LRTensor

/// AdaBound and AMSBound (Luo et al., 2019), following the reference implementation `adabound` 0.0.5:
/// Adam whose per-element step size is clipped into bounds that converge to `final_lr` (SGD-like).
///
///     m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²     (amsbound: v̂ ← max(v̂, v))
///     α ← γ·√(1−β₂ᵗ)/(1−β₁ᵗ);  f ← final_lr · γ / base_lr
///     θ ← θ − clamp(α / (√v + ε), f·(1 − 1/(gamma·t+1)), f·(1 + 1/(gamma·t))) · m
///
/// The bounds scale with `lr / base_lr`, where `base_lr` is the group's LR when the optimizer was built, so
/// that a scheduler also moves the bounds.
public final class AdaBound: OptimizerBase, @unchecked Sendable {
    static func parameters(amsbound: Bool) -> [HyperParameter] {
        [
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the first and second moments"),
            HyperParameter("final_lr", .number, 0.1, doc: "the SGD LR the bounds converge to"),
            HyperParameter("gamma", .number, 1e-3, doc: "convergence speed of the bounds"),
            HyperParameter("eps", .number, 1e-8, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("amsbound", .bool, amsbound ? 1 : 0, doc: "use the running maximum of v (AMSBound)"),
        ]
    }
    static let check: @Sendable (Double, [String: Double]) throws -> Void = { lr, h in
        try checkLR(lr); try checkEps(h); try checkBetas(h)
        if let f = h[.finalLR], !(0.0 <= f) { throw OptimError("Invalid final learning rate: \(pyRepr(f))") }
        if let g = h[.gamma], !(0.0 <= g && g < 1.0) { throw OptimError("Invalid gamma parameter: \(pyRepr(g))") }
        try checkWeightDecay(h)
    }

    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adabound", reference: "adabound.AdaBound 0.0.5", defaultLR: 1e-3,
        parameters: parameters(amsbound: false), check: check,
        build: { AdaBound(groups: $0, descriptor: AdaBound.kind) })
    /// `amsbound`: AdaBound with `amsbound=true` by default.
    public static let amsboundKind: OptimizerDescriptor = OptimizerDescriptor(
        name: "amsbound", reference: "adabound.AdaBound 0.0.5 (amsbound=True)", defaultLR: 1e-3,
        parameters: parameters(amsbound: true), check: check,
        build: { AdaBound(groups: $0, descriptor: AdaBound.amsboundKind) })

    /// m, v and (AMSBound) the running maximum of v; the group's base LR, kept with each parameter.
    override public class var stateSlots: [StateSlot] { [.expAvg, .expAvgSq, .maxExpAvgSq] }
    static let baseLR = ScalarSlot(0, "base_lr")
    override public class var scalarSlots: [ScalarSlot] { [baseLR] }

    /// The groups' LRs at construction (the reference's `base_lrs`).
    public private(set) var baseLRs: [Double]

    public required init(groups: [ParamGroup], descriptor: OptimizerDescriptor) {
        baseLRs = groups.map(\.lr)
        super.init(groups: groups, descriptor: descriptor)
    }

    public override func restore(_ state: OptimizerState) throws {
        try super.restore(state)
        for (g, group) in groups.enumerated() {
            if let first = group.params.first, let b = state.scalars[first.name]?["base_lr"] { baseLRs[g] = b }
        }
    }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let gi = groups.firstIndex { $0 === group } ?? 0
        let baseLR = baseLRs[gi]
        state[Self.baseLR] = baseLR
        let n = p.value.count
        let b1 = group[.beta1], b2 = group[.beta2], wdD = group[.weightDecay]
        let amsbound = group[.amsbound] != 0
        let m = state.buffer(.expAvg, like: p), v = state.buffer(.expAvgSq, like: p)
        let vmax = amsbound ? state.buffer(.maxExpAvgSq, like: p) : nil
        state.step += 1
        let step = state.step
        let fb1 = Float(b1), w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2)
        let wd = Float(wdD), eps = Float(group[.eps])
        let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
        let stepSize = Float(group.lr * bc2.squareRoot() / bc1)
        let finalLR = group[.finalLR] * group.lr / baseLR
        let gamma = group[.gamma]
        let lower = Float(finalLR * (1 - 1 / (gamma * step + 1)))
        let upper = Float(finalLR * (1 + 1 / (gamma * step)))
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            withOptionalPointer(vmax) { vm in
                for i in 0..<n {
                    var g = gp[i]
                    if wdD != 0 { g = g + wd * w[i] }
                    let mi = mp[i] * fb1 + w1 * g
                    mp[i] = mi
                    var vi = vp[i] * fb2 + w2 * g * g
                    vp[i] = vi
                    if amsbound { vi = max(vm![i], vi); vm![i] = vi }
                    let denom = vi.squareRoot() + eps
                    let s = min(max(stepSize / denom, lower), upper) * mi
                    w[i] = w[i] + (-s)
                }
            }
        } } } }
    }
}
