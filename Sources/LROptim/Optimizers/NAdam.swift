import Foundation
import LRTensor

/// NAdam (Dozat, 2016), following `torch.optim.NAdam` (single-tensor path) with the momentum schedule
/// μₜ = β₁(1 − ½·0.96^(t·ψ)), ψ = momentum_decay. The running product of μ is kept in Float32 as PyTorch does.
///
///     d ← √(v/(1−β₂ᵗ)) + ε
///     θ ← θ − γ(1−μₜ)/(1−Πμ) · g/d − γμₜ₊₁/(1−Πμ·μₜ₊₁) · m/d
public final class NAdam: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "nadam", reference: "torch.optim.NAdam", defaultLR: 2e-3,
        parameters: [
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the first and second moments"),
            HyperParameter("eps", .number, 1e-8, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, 0, doc: "weight decay (L2, or decoupled, see below)"),
            HyperParameter("momentum_decay", .number, 4e-3, doc: "ψ in the momentum schedule"),
            HyperParameter("decoupled_weight_decay", .bool, 0, doc: "decay θ directly as AdamW (NAdamW)"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in
            try checkLR(lr); try checkEps(h); try checkBetas(h); try checkWeightDecay(h)
            try checkNonNegative(h, .momentumDecay)
        },
        build: { NAdam(groups: $0, descriptor: NAdam.kind) })

    /// m and v; the running product of the momentum coefficients μ.
    override public class var stateSlots: [StateSlot] { [.expAvg, .expAvgSq] }
    static let muProduct = ScalarSlot(0, "mu_product")
    override public class var scalarSlots: [ScalarSlot] { [muProduct] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = group[.beta1], b2 = group[.beta2], wdD = group[.weightDecay]
        let psi = group[.momentumDecay]
        let decoupled = group[.decoupledWeightDecay] != 0
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let m = state.buffer(.expAvg, like: p), v = state.buffer(.expAvgSq, like: p)
        state.step += 1
        let step = state.step
        let bc2 = 1 - pow(b2, step)
        let mu = b1 * (1.0 - 0.5 * pow(0.96, step * psi))
        let muNext = b1 * (1.0 - 0.5 * pow(0.96, (step + 1) * psi))
        let muProduct = Float(state[Self.muProduct] ?? 1) * Float(mu)
        state[Self.muProduct] = Double(muProduct)
        let muProductNext = Double(muProduct) * muNext
        let c1 = Float(-lr * (1.0 - mu) / (1.0 - Double(muProduct)))
        let c2 = Float((-lr * muNext) / (1.0 - muProductNext))
        let decay = Float(1 - lr * wdD), wd = Float(wdD)
        let w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2), fbc2 = Float(bc2)
        let eps = Float(group[.eps])
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            for i in 0..<n {
                var g = sgn * gp[i]
                if wdD != 0 { if decoupled { w[i] = w[i] * decay } else { g = g + wd * w[i] } }
                let mi = lerp(mp[i], g, w1)
                mp[i] = mi
                let vi = vp[i] * fb2 + w2 * g * g
                vp[i] = vi
                let denom = (vi / fbc2).squareRoot() + eps
                let wi = w[i] + c1 * (g / denom)
                w[i] = wi + c2 * (mi / denom)
            }
        } } } }
    }
}
