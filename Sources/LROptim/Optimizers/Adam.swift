import Foundation
import LRTensor

/// Adam (Kingma & Ba, 2014) with optional AMSGrad and L2 weight decay, following `torch.optim.Adam`
/// (single-tensor path, op by op in Float32; scalar bias corrections in Double).
///
///     g ← g + λθ                         (L2; AdamW decays θ instead, see `AdamW`)
///     m ← lerp(m, g, 1−β₁);  v ← β₂v + (1−β₂)g²
///     amsgrad: v̂ ← max(v̂, v)
///     θ ← θ − (γ / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
///
/// ```swift
/// let adam = try OptimizerFactory.make(spec: "adam:lr=3e-4,amsgrad=true", parameters: params)
/// adam.step()
/// ```
public class Adam: OptimizerBase, @unchecked Sendable {
    static func parameters(weightDecay: Double) -> [HyperParameter] {
        [
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the first and second moments"),
            HyperParameter("eps", .number, 1e-8, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, weightDecay, doc: weightDecay == 0
                           ? "L2 penalty added to the gradient" : "decoupled decay: θ ← θ·(1 − lr·weight_decay)"),
            HyperParameter("amsgrad", .bool, 0, doc: "use the running maximum of v (AMSGrad)"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ]
    }
    static let check: @Sendable (Double, [String: Double]) throws -> Void = { lr, h in
        try checkLR(lr); try checkEps(h); try checkBetas(h); try checkWeightDecay(h)
    }

    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adam", reference: "torch.optim.Adam", defaultLR: 1e-3,
        parameters: parameters(weightDecay: 0), check: check,
        build: { Adam(groups: $0, descriptor: Adam.kind) })

    /// m, v and (AMSGrad) the running maximum of v.
    override public class var stateSlots: [StateSlot] { [.expAvg, .expAvgSq, .maxExpAvgSq] }

    /// Whether weight decay is decoupled from the gradient (AdamW) instead of an L2 term (Adam).
    public var decoupledWeightDecay: Bool { false }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = group[.beta1], b2 = group[.beta2]
        let wdD = group[.weightDecay], epsD = group[.eps]
        let amsgrad = group[.amsgrad] != 0
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let m = state.buffer(.expAvg, like: p), v = state.buffer(.expAvgSq, like: p)
        let vmax = amsgrad ? state.buffer(.maxExpAvgSq, like: p) : nil
        state.step += 1
        let step = state.step

        let decoupled = decoupledWeightDecay && wdD != 0, l2 = !decoupledWeightDecay && wdD != 0
        let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
        let stepSize = lr / bc1
        // Without decoupled decay the factor is 1, and w·1 is w exactly.
        let k = AdamConstants(sign: sgn, decay: decoupled ? Float(1 - lr * wdD) : 1, weightDecay: Float(wdD),
                              oneMinusBeta1: Float(1 - b1), beta2: Float(b2), oneMinusBeta2: Float(1 - b2),
                              bc2Sqrt: Float(pow(bc2, 0.5)), eps: Float(epsD), negStep: Float(-stepSize))

        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            withOptionalPointer(vmax) { vm in
                // One loop body, inlined once per (L2, AMSGrad) pair with the pair as constants: no branch is left
                // inside the loops, so LLVM vectorises them.
                let vmax = vm ?? vp  // read only with AMSGrad
                switch (l2, amsgrad) {
                case (false, false): Adam.update(n, k, w: w, g: gp, m: mp, v: vp, vmax: vmax, l2: false, amsgrad: false)
                case (true, false): Adam.update(n, k, w: w, g: gp, m: mp, v: vp, vmax: vmax, l2: true, amsgrad: false)
                case (false, true): Adam.update(n, k, w: w, g: gp, m: mp, v: vp, vmax: vmax, l2: false, amsgrad: true)
                case (true, true): Adam.update(n, k, w: w, g: gp, m: mp, v: vp, vmax: vmax, l2: true, amsgrad: true)
                }
            }
        } } } }
    }

    /// The update of one tensor, element by element in the reference's op order.
    @inline(__always)
    static func update(_ n: Int, _ k: AdamConstants, w: UnsafeMutablePointer<Float>, g gp: UnsafeMutablePointer<Float>,
                       m mp: UnsafeMutablePointer<Float>, v vp: UnsafeMutablePointer<Float>,
                       vmax vm: UnsafeMutablePointer<Float>, l2: Bool, amsgrad: Bool) {
        for i in 0..<n {
            var g = k.sign * gp[i]
            let wi = w[i] * k.decay
            if l2 { g = g + k.weightDecay * wi }
            let mi = lerp(mp[i], g, k.oneMinusBeta1)
            mp[i] = mi
            var vi = vp[i] * k.beta2 + k.oneMinusBeta2 * g * g
            vp[i] = vi
            if amsgrad { vi = max(vm[i], vi); vm[i] = vi }
            let denom = vi.squareRoot() / k.bc2Sqrt + k.eps
            w[i] = wi + k.negStep * (mi / denom)
        }
    }
}

/// The Float32 constants of one Adam step for one tensor.
struct AdamConstants {
    var sign: Float, decay: Float, weightDecay: Float, oneMinusBeta1: Float
    var beta2: Float, oneMinusBeta2: Float, bc2Sqrt: Float, eps: Float, negStep: Float
}

/// AdamW (Loshchilov & Hutter, 2017): Adam with decoupled weight decay, `θ ← θ·(1 − γλ)` before the Adam
/// update, following `torch.optim.AdamW`. Written as Adam plus the decoupled decay, not as a copy.
public final class AdamW: Adam, @unchecked Sendable {
    public static let decoupledKind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adamw", reference: "torch.optim.AdamW", defaultLR: 1e-3,
        parameters: Adam.parameters(weightDecay: 1e-2), check: Adam.check,
        build: { AdamW(groups: $0, descriptor: AdamW.decoupledKind) })

    public override var decoupledWeightDecay: Bool { true }
}
