import LRTensor

/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), following timm 1.0.31
/// `timm.optim.Lion` (the same update as lucidrains' `lion-pytorch`).
///
///     θ ← θ·(1 − γλ);  θ ← θ − γ·sign(β₁m + (1−β₁)g);  m ← lerp(m, g, 1−β₂)
public final class Lion: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "lion", reference: "timm.optim.Lion 1.0.31", defaultLR: 1e-4,
        parameters: [
            HyperParameter("betas", .betas, 0.9, 0.99, doc: "β₁ mixes the update, β₂ decays the momentum"),
            HyperParameter("weight_decay", .number, 0, doc: "decoupled decay: θ ← θ·(1 − lr·weight_decay)"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in try checkLR(lr); try checkBetas(h); try checkWeightDecay(h) },
        build: { Lion(groups: $0, descriptor: Lion.kind) })

    /// The momentum m.
    override public class var stateSlots: [StateSlot] { [.expAvg] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let lr = group.lr
        let b1 = group[.beta1], b2 = group[.beta2]
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let m = state.buffer(.expAvg, like: p)
        state.step += 1
        let decay = Float(1 - lr * group[.weightDecay])
        let fb1 = Float(b1), w1 = Float(1 - b1), w2 = Float(1 - b2), negLR = Float(-lr)
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in
            for i in 0..<n {
                let g = sgn * gp[i]
                let c = mp[i] * fb1 + w1 * g
                let u: Float = c > 0 ? 1 : (c < 0 ? -1 : 0)
                w[i] = w[i] * decay + negLR * u
                mp[i] = lerp(mp[i], g, w2)
            }
        } } }
    }
}
