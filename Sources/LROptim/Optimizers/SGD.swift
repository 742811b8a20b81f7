import LRTensor

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay,
/// following `torch.optim.SGD` (single-tensor path).
///
/// The momentum buffer starts as a copy of the first gradient (so dampening applies from the second step on).
///
///     b ← μ·b + (1−τ)·g        (b₁ = g)
///     θ ← θ − γ·(nesterov ? g + μ·b : b)
///
/// ```swift
/// let opt = try OptimizerFactory.make(spec: "sgd:lr=0.1,momentum=0.9,nesterov=true", parameters: model.parameters)
/// opt.step()
/// ```
public final class SGD: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "sgd", reference: "torch.optim.SGD", defaultLR: 1e-3,
        parameters: [
            HyperParameter("momentum", .number, 0, doc: "momentum factor μ"),
            HyperParameter("dampening", .number, 0, doc: "dampening τ for momentum"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("nesterov", .bool, 0, doc: "Nesterov momentum (needs momentum > 0, dampening = 0)"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in
            try checkLR(lr)
            try checkNonNegative(h, .momentum)
            try checkWeightDecay(h)
            if (h[.nesterov] ?? 0) != 0 && ((h[.momentum] ?? 0) <= 0 || (h[.dampening] ?? 0) != 0) {
                throw OptimError("Nesterov momentum requires a momentum and zero dampening")
            }
        },
        build: { SGD(groups: $0, descriptor: SGD.kind) })

    /// The momentum buffer (a copy of the first gradient at the first step).
    static let momentumBuffer = StateSlot(0, "momentum_buffer")
    override public class var stateSlots: [StateSlot] { [momentumBuffer] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let alpha = Float(-group.lr)
        let wdD = group[.weightDecay], momD = group[.momentum]
        let wd = Float(wdD), mom = Float(momD)
        let damp = Float(1 - group[.dampening])
        let nesterov = group[.nesterov] != 0
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        state.step += 1
        p.value.withPointer { w in p.grad.withPointer { gp in
            if momD == 0 {
                for i in 0..<n {
                    var g = sgn * gp[i]
                    if wdD != 0 { g = g + wd * w[i] }
                    w[i] = w[i] + alpha * g
                }
                return
            }
            let fresh = state[Self.momentumBuffer] == nil
            let buf = state.buffer(Self.momentumBuffer, like: p)
            buf.withPointer { b in
                for i in 0..<n {
                    var g = sgn * gp[i]
                    if wdD != 0 { g = g + wd * w[i] }
                    b[i] = fresh ? g : b[i] * mom + damp * g
                    g = nesterov ? g + mom * b[i] : b[i]
                    w[i] = w[i] + alpha * g
                }
            }
        } }
    }
}
