import LRTensor

/// Adadelta (Zeiler, 2012), following `torch.optim.Adadelta` (single-tensor path).
///
///     v ← ρv + (1−ρ)g²;  Δ ← √(u + ε)/√(v + ε) · g;  u ← ρu + (1−ρ)Δ²;  θ ← θ − γΔ
public final class Adadelta: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adadelta", reference: "torch.optim.Adadelta", defaultLR: 1.0,
        parameters: [
            HyperParameter("rho", .number, 0.9, doc: "decay rate of the running averages"),
            HyperParameter("eps", .number, 1e-6, doc: "added inside both square roots"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in
            try checkLR(lr)
            if let r = h[.rho], !(0.0 <= r && r <= 1.0) { throw OptimError("Invalid rho value: \(pyRepr(r))") }
            try checkEps(h); try checkWeightDecay(h)
        },
        build: { Adadelta(groups: $0, descriptor: Adadelta.kind) })

    /// The running averages of squared gradients and of squared updates.
    static let squareAvg = StateSlot(0, "square_avg"), accDelta = StateSlot(1, "acc_delta")
    override public class var stateSlots: [StateSlot] { [squareAvg, accDelta] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let rhoD = group[.rho], wdD = group[.weightDecay]
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let sq = state.buffer(Self.squareAvg, like: p), acc = state.buffer(Self.accDelta, like: p)
        state.step += 1
        let rho = Float(rhoD), w1 = Float(1 - rhoD), wd = Float(wdD), eps = Float(group[.eps])
        let negLR = Float(-group.lr)
        p.value.withPointer { w in p.grad.withPointer { gp in sq.withPointer { vp in acc.withPointer { up in
            for i in 0..<n {
                var g = sgn * gp[i]
                if wdD != 0 { g = g + wd * w[i] }
                let vi = vp[i] * rho + w1 * g * g
                vp[i] = vi
                let std = (vi + eps).squareRoot()
                let delta = (up[i] + eps).squareRoot() / std * g
                up[i] = up[i] * rho + w1 * delta * delta
                w[i] = w[i] + negLR * delta
            }
        } } } }
    }
}
