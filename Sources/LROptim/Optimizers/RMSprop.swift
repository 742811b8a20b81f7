import LRTensor

/// RMSprop (Hinton), following `torch.optim.RMSprop` (single-tensor path): ε is added after the square root.
///
///     v ← α·v + (1−α)·g²
///     centered: ḡ ← lerp(ḡ, g, 1−α);  d ← √(v − ḡ²) + ε      else d ← √v + ε
///     momentum > 0: b ← μ·b + g/d;  θ ← θ − γ·b               else θ ← θ − γ·g/d
public final class RMSprop: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "rmsprop", reference: "torch.optim.RMSprop", defaultLR: 1e-2,
        parameters: [
            HyperParameter("alpha", .number, 0.99, doc: "smoothing constant of the squared-gradient average"),
            HyperParameter("eps", .number, 1e-8, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, 0, doc: "L2 penalty added to the gradient"),
            HyperParameter("momentum", .number, 0, doc: "momentum factor"),
            HyperParameter("centered", .bool, 0, doc: "normalise by the estimated variance"),
            HyperParameter("maximize", .bool, 0, doc: "ascend instead of descend"),
        ],
        check: { lr, h in
            try checkLR(lr)
            try checkEps(h)
            try checkNonNegative(h, "momentum")
            try checkWeightDecay(h)
            try checkNonNegative(h, "alpha")
        },
        build: { RMSprop(groups: $0, descriptor: RMSprop.kind) })

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let alphaD = hyper(group, "alpha"), wdD = hyper(group, "weight_decay"), momD = hyper(group, "momentum")
        let centered = hyper(group, "centered") != 0
        let a = Float(alphaD), oneMinusA = Float(1 - alphaD), wd = Float(wdD), mom = Float(momD)
        let eps = Float(hyper(group, "eps")), negLR = Float(-group.lr)
        let sgn: Float = hyper(group, "maximize") != 0 ? -1 : 1
        let sq = state.buffer("square_avg", like: p)
        let buf = momD > 0 ? state.buffer("momentum_buffer", like: p) : nil
        let gavg = centered ? state.buffer("grad_avg", like: p) : nil
        state.step += 1
        p.value.withPointer { w in p.grad.withPointer { gp in sq.withPointer { v in
            withOptionalPointer(buf) { b in withOptionalPointer(gavg) { ga in
                for i in 0..<n {
                    var g = sgn * gp[i]
                    if wdD != 0 { g = g + wd * w[i] }
                    v[i] = v[i] * a + oneMinusA * g * g
                    var avg: Float
                    if centered {
                        let m = lerp(ga![i], g, oneMinusA)
                        ga![i] = m
                        avg = (v[i] + (-1) * m * m).squareRoot()
                    } else {
                        avg = v[i].squareRoot()
                    }
                    avg = avg + eps
                    if momD > 0 {
                        let bi = b![i] * mom + 1 * (g / avg)
                        b![i] = bi
                        w[i] = w[i] + negLR * bi
                    } else {
                        w[i] = w[i] + negLR * (g / avg)
                    }
                }
            } }
        } } }
    }
}
