import Foundation
import LRTensor

/// RAdam (Liu et al., 2019), following `torch.optim.RAdam` (single-tensor path): Adam whose adaptive term is
/// switched on, with a variance rectification r, once the approximated SMA length ρₜ exceeds 5.
///
///     ρ∞ = 2/(1−β₂) − 1;  ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ)
///     ρₜ > 5: θ ← θ − γ·m̂·√(1−β₂ᵗ)/(√v + ε)·r      else θ ← θ − γ·m̂
public final class RAdam: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "radam", reference: "torch.optim.RAdam", defaultLR: 1e-3,
        parameters: [
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the first and second moments"),
            HyperParameter("eps", .number, 1e-8, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, 0, doc: "weight decay (L2, or decoupled, see below)"),
            HyperParameter("decoupled_weight_decay", .bool, 0, doc: "decay θ directly as AdamW (RAdamW)"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in try checkLR(lr); try checkEps(h); try checkBetas(h); try checkWeightDecay(h) },
        build: { RAdam(groups: $0, descriptor: RAdam.kind) })

    /// m and v.
    override public class var stateSlots: [StateSlot] { [.expAvg, .expAvgSq] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = group[.beta1], b2 = group[.beta2], wdD = group[.weightDecay]
        let decoupled = group[.decoupledWeightDecay] != 0
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let m = state.buffer(.expAvg, like: p), v = state.buffer(.expAvgSq, like: p)
        state.step += 1
        let step = state.step
        let decay = Float(1 - lr * wdD), wd = Float(wdD)
        let w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2)
        let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
        let rhoInf = 2 / (1 - b2) - 1
        let rhoT = rhoInf - 2 * step * pow(b2, step) / bc2
        let rectified = rhoT > 5.0
        let rect = rectified ? pow((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT), 0.5) : 0
        let fbc1 = Float(bc1), flr = Float(lr), frect = Float(rect), bc2Sqrt = Float(pow(bc2, 0.5))
        let eps = Float(group[.eps])
        let k = RAdamConstants(sign: sgn, decay: decoupled && wdD != 0 ? decay : 1, weightDecay: wd, oneMinusBeta1: w1,
                               beta2: fb2, oneMinusBeta2: w2, bc1: fbc1, lr: flr, rect: frect, bc2Sqrt: bc2Sqrt, eps: eps)
        let l2 = !decoupled && wdD != 0
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            // The loop body inlined once per (L2, rectified) pair with the pair as constants: no branch is left
            // inside the loops, so they vectorise. Without decoupled decay `decay` is 1, and w·1 is w exactly.
            switch (l2, rectified) {
            case (false, false): RAdam.update(n, k, w: w, g: gp, m: mp, v: vp, l2: false, rectified: false)
            case (true, false): RAdam.update(n, k, w: w, g: gp, m: mp, v: vp, l2: true, rectified: false)
            case (false, true): RAdam.update(n, k, w: w, g: gp, m: mp, v: vp, l2: false, rectified: true)
            case (true, true): RAdam.update(n, k, w: w, g: gp, m: mp, v: vp, l2: true, rectified: true)
            }
        } } } }
    }

    @inline(__always)
    static func update(_ n: Int, _ k: RAdamConstants, w: UnsafeMutablePointer<Float>, g gp: UnsafeMutablePointer<Float>,
                       m mp: UnsafeMutablePointer<Float>, v vp: UnsafeMutablePointer<Float>, l2: Bool, rectified: Bool) {
        for i in 0..<n {
            var g = k.sign * gp[i]
            let wi = w[i] * k.decay
            if l2 { g = g + k.weightDecay * wi }
            let mi = lerp(mp[i], g, k.oneMinusBeta1)
            mp[i] = mi
            let vi = vp[i] * k.beta2 + k.oneMinusBeta2 * g * g
            vp[i] = vi
            let corrected = mi / k.bc1
            if rectified {
                let adaptive = k.bc2Sqrt / (vi.squareRoot() + k.eps)
                w[i] = wi + (-1) * (corrected * k.lr * adaptive * k.rect)
            } else {
                w[i] = wi + (-1) * (corrected * k.lr)
            }
        }
    }
}

/// The Float32 constants of one RAdam step for one tensor.
struct RAdamConstants {
    var sign: Float, decay: Float, weightDecay: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float
    var bc1: Float, lr: Float, rect: Float, bc2Sqrt: Float, eps: Float
}
