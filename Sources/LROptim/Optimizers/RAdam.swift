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

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = hyper(group, "beta1"), b2 = hyper(group, "beta2"), wdD = hyper(group, "weight_decay")
        let decoupled = hyper(group, "decoupled_weight_decay") != 0
        let sgn: Float = hyper(group, "maximize") != 0 ? -1 : 1
        let m = state.buffer("exp_avg", like: p), v = state.buffer("exp_avg_sq", like: p)
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
        let eps = Float(hyper(group, "eps"))
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            for i in 0..<n {
                var g = sgn * gp[i]
                if wdD != 0 { if decoupled { w[i] = w[i] * decay } else { g = g + wd * w[i] } }
                let mi = lerp(mp[i], g, w1)
                mp[i] = mi
                let vi = vp[i] * fb2 + w2 * g * g
                vp[i] = vi
                let corrected = mi / fbc1
                if rectified {
                    let adaptive = bc2Sqrt / (vi.squareRoot() + eps)
                    w[i] = w[i] + (-1) * (corrected * flr * adaptive * frect)
                } else {
                    w[i] = w[i] + (-1) * (corrected * flr)
                }
            }
        } } } }
    }
}
