import LRTensor

/// Adagrad (Duchi et al., 2011), following `torch.optim.Adagrad` (single-tensor path).
///
///     γ̃ ← γ / (1 + (t−1)·η)            (η: lr_decay)
///     s ← s + g²                       (s₀: initial_accumulator_value)
///     θ ← θ − γ̃ · g / (√s + ε)
///
/// As in PyTorch, the accumulator starts at the optimizer-wide `initial_accumulator_value` (the spec's value,
/// `OptimizerBase.defaults`); a value set for one group by a rule is ignored.
public final class Adagrad: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "adagrad", reference: "torch.optim.Adagrad", defaultLR: 1e-2,
        parameters: [
            HyperParameter("lr_decay", .number, 0, doc: "LR decay per step: lr / (1 + (t-1)·lr_decay)"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("initial_accumulator_value", .number, 0, doc: "initial value of the sum of squares"),
            HyperParameter("eps", .number, 1e-10, doc: "added to the denominator"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in
            try checkLR(lr)
            try checkNonNegative(h, .lrDecay)
            try checkWeightDecay(h)
            try checkNonNegative(h, .initialAccumulatorValue)
            try checkEps(h)
        },
        build: { Adagrad(groups: $0, descriptor: Adagrad.kind) })

    /// The running sum of squared gradients.
    static let sum = StateSlot(0, "sum")
    override public class var stateSlots: [StateSlot] { [sum] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let sum = state.buffer(Self.sum, like: p, fill: Float(optimizerDefault(.initialAccumulatorValue)))
        state.step += 1
        let step = state.step
        let wdD = group[.weightDecay]
        let wd = Float(wdD), eps = Float(group[.eps])
        let clr = group.lr / (1 + (step - 1) * group[.lrDecay])
        let alpha = Float(-clr)
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        p.value.withPointer { w in p.grad.withPointer { gp in sum.withPointer { s in
            for i in 0..<n {
                var g = sgn * gp[i]
                if wdD != 0 { g = g + wd * w[i] }
                s[i] = s[i] + 1 * g * g
                let std = s[i].squareRoot() + eps
                w[i] = w[i] + alpha * (g / std)
            }
        } } }
    }
}
