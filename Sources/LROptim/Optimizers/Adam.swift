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

    /// Whether weight decay is decoupled from the gradient (AdamW) instead of an L2 term (Adam).
    public var decoupledWeightDecay: Bool { false }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = hyper(group, "beta1"), b2 = hyper(group, "beta2")
        let wdD = hyper(group, "weight_decay"), epsD = hyper(group, "eps")
        let amsgrad = hyper(group, "amsgrad") != 0
        let sgn: Float = hyper(group, "maximize") != 0 ? -1 : 1
        let m = state.buffer("exp_avg", like: p), v = state.buffer("exp_avg_sq", like: p)
        let vmax = amsgrad ? state.buffer("max_exp_avg_sq", like: p) : nil
        state.step += 1
        let step = state.step

        let decoupled = decoupledWeightDecay && wdD != 0, l2 = !decoupledWeightDecay && wdD != 0
        let decay = Float(1 - lr * wdD), wd = Float(wdD)
        let w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2)
        let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
        let stepSize = lr / bc1
        let bc2Sqrt = Float(pow(bc2, 0.5)), eps = Float(epsD), negStep = Float(-stepSize)

        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            // The common settings (no AMSGrad, β₁ > 0.5) get loops with no branch inside, which LLVM vectorises;
            // each element still sees exactly the general loop's operations, in its order.
            if !amsgrad && abs(w1) < 0.5 {
                let k = AdamConstants(sign: sgn, decay: decoupled ? decay : 1, weightDecay: wd, oneMinusBeta1: w1,
                                      beta2: fb2, oneMinusBeta2: w2, bc2Sqrt: bc2Sqrt, eps: eps, negStep: negStep)
                if l2 {
                    Adam.updateL2(n, k, w: w, g: gp, m: mp, v: vp)
                } else {
                    // Without decoupled decay `decay` is 1, and w·1 is w exactly.
                    Adam.updateDecoupled(n, k, w: w, g: gp, m: mp, v: vp)
                }
                return
            }
            withOptionalPointer(vmax) { vm in
                for i in 0..<n {
                    var g = sgn * gp[i]
                    if decoupled { w[i] = w[i] * decay }
                    if l2 { g = g + wd * w[i] }
                    let mi = lerp(mp[i], g, w1)
                    mp[i] = mi
                    var vi = vp[i] * fb2 + w2 * g * g
                    vp[i] = vi
                    if amsgrad { vi = max(vm![i], vi); vm![i] = vi }
                    let denom = vi.squareRoot() / bc2Sqrt + eps
                    w[i] = w[i] + negStep * (mi / denom)
                }
            }
        } } } }
    }

    /// The step without AMSGrad, for AdamW and for Adam without weight decay (`decay` = 1); β₁ > 0.5, so `lerp`
    /// takes its first form.
    @inline(__always)
    static func updateDecoupled(_ n: Int, _ k: AdamConstants, w: UnsafeMutablePointer<Float>,
                                g gp: UnsafeMutablePointer<Float>, m mp: UnsafeMutablePointer<Float>,
                                v vp: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let g = k.sign * gp[i]
            let wi = w[i] * k.decay
            let mi = mp[i] + k.oneMinusBeta1 * (g - mp[i])
            mp[i] = mi
            let vi = vp[i] * k.beta2 + k.oneMinusBeta2 * g * g
            vp[i] = vi
            let denom = vi.squareRoot() / k.bc2Sqrt + k.eps
            w[i] = wi + k.negStep * (mi / denom)
        }
    }

    /// The step without AMSGrad for Adam with an L2 term; β₁ > 0.5, so `lerp` takes its first form.
    @inline(__always)
    static func updateL2(_ n: Int, _ k: AdamConstants, w: UnsafeMutablePointer<Float>,
                         g gp: UnsafeMutablePointer<Float>, m mp: UnsafeMutablePointer<Float>,
                         v vp: UnsafeMutablePointer<Float>) {
        for i in 0..<n {
            let wi = w[i]
            let g = k.sign * gp[i] + k.weightDecay * wi
            let mi = mp[i] + k.oneMinusBeta1 * (g - mp[i])
            mp[i] = mi
            let vi = vp[i] * k.beta2 + k.oneMinusBeta2 * g * g
            vp[i] = vi
            let denom = vi.squareRoot() / k.bc2Sqrt + k.eps
            w[i] = wi + k.negStep * (mi / denom)
        }
    }
}

/// The Float32 constants of one Adam step for one parameter.
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
