import Foundation
import LRTensor

/// Adamax (Kingma & Ba, 2014, §7), following `torch.optim.Adamax` (single-tensor path): Adam with the
/// infinity norm, u ← max(β₂u, |g| + ε), θ ← θ − γ/(1−β₁ᵗ) · m/u.
public final class Adamax: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adamax", reference: "torch.optim.Adamax", defaultLR: 2e-3,
        parameters: [
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the moment and the infinity norm"),
            HyperParameter("eps", .number, 1e-8, doc: "added to |g|"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in try checkLR(lr); try checkEps(h); try checkBetas(h); try checkWeightDecay(h) },
        build: { Adamax(groups: $0, descriptor: Adamax.kind) })

    /// m and the exponentially weighted infinity norm u.
    static let expInf = StateSlot(1, "exp_inf")
    override public class var stateSlots: [StateSlot] { [.expAvg, expInf] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let b1 = group[.beta1], b2 = group[.beta2], wdD = group[.weightDecay]
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let m = state.buffer(.expAvg, like: p), u = state.buffer(Self.expInf, like: p)
        state.step += 1
        let clr = group.lr / (1 - pow(b1, state.step))
        let w1 = Float(1 - b1), fb2 = Float(b2), wd = Float(wdD), eps = Float(group[.eps]), negC = Float(-clr)
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in u.withPointer { up in
            for i in 0..<n {
                var g = sgn * gp[i]
                if wdD != 0 { g = g + wd * w[i] }
                let mi = lerp(mp[i], g, w1)
                mp[i] = mi
                let ui = max(up[i] * fb2, abs(g) + eps)
                up[i] = ui
                w[i] = w[i] + negC * (mi / ui)
            }
        } } } }
    }
}
