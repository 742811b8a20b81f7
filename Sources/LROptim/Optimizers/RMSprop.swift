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
            try checkNonNegative(h, .momentum)
            try checkWeightDecay(h)
            try checkNonNegative(h, .alpha)
        },
        build: { RMSprop(groups: $0, descriptor: RMSprop.kind) })

    /// The running average of squared gradients; the momentum buffer; (centered) the running average of gradients.
    static let squareAvg = StateSlot(0, "square_avg"), momentumBuffer = StateSlot(1, "momentum_buffer"),
               gradAvg = StateSlot(2, "grad_avg")
    override public class var stateSlots: [StateSlot] { [squareAvg, momentumBuffer, gradAvg] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        let alphaD = group[.alpha], wdD = group[.weightDecay], momD = group[.momentum]
        let centered = group[.centered] != 0
        let a = Float(alphaD), oneMinusA = Float(1 - alphaD), wd = Float(wdD), mom = Float(momD)
        let eps = Float(group[.eps]), negLR = Float(-group.lr)
        let sgn: Float = group[.maximize] != 0 ? -1 : 1
        let sq = state.buffer(Self.squareAvg, like: p)
        let buf = momD > 0 ? state.buffer(Self.momentumBuffer, like: p) : nil
        let gavg = centered ? state.buffer(Self.gradAvg, like: p) : nil
        state.step += 1
        let k = RMSpropConstants(sign: sgn, l2: wdD != 0, weightDecay: wd, alpha: a, oneMinusAlpha: oneMinusA,
                                 eps: eps, momentum: mom, negLR: negLR)
        p.value.withPointer { w in p.grad.withPointer { gp in sq.withPointer { v in
            withOptionalPointer(buf) { b in withOptionalPointer(gavg) { ga in
                // The loop body inlined once per (centered, momentum) pair with the pair as constants: no branch is
                // left inside the loops, so they vectorise. Unused buffers are never read.
                let b = b ?? v, ga = ga ?? v
                switch (centered, momD > 0) {
                case (false, false):
                    RMSprop.update(n, k, w: w, g: gp, v: v, b: b, ga: ga, centered: false, momentum: false)
                case (true, false):
                    RMSprop.update(n, k, w: w, g: gp, v: v, b: b, ga: ga, centered: true, momentum: false)
                case (false, true):
                    RMSprop.update(n, k, w: w, g: gp, v: v, b: b, ga: ga, centered: false, momentum: true)
                case (true, true):
                    RMSprop.update(n, k, w: w, g: gp, v: v, b: b, ga: ga, centered: true, momentum: true)
                }
            } }
        } } }
    }

    /// `b`: the momentum buffer, `ga`: the gradient average (centered).
    @inline(__always)
    static func update(_ n: Int, _ k: RMSpropConstants, w: UnsafeMutablePointer<Float>, g gp: UnsafeMutablePointer<Float>,
                       v: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, ga: UnsafeMutablePointer<Float>,
                       centered: Bool, momentum: Bool) {
        for i in 0..<n {
            var g = k.sign * gp[i]
            if k.l2 { g = g + k.weightDecay * w[i] }
            v[i] = v[i] * k.alpha + k.oneMinusAlpha * g * g
            var avg: Float
            if centered {
                let m = lerp(ga[i], g, k.oneMinusAlpha)
                ga[i] = m
                avg = (v[i] + (-1) * m * m).squareRoot()
            } else {
                avg = v[i].squareRoot()
            }
            avg = avg + k.eps
            if momentum {
                let bi = b[i] * k.momentum + 1 * (g / avg)
                b[i] = bi
                w[i] = w[i] + k.negLR * bi
            } else {
                w[i] = w[i] + k.negLR * (g / avg)
            }
        }
    }
}

/// The Float32 constants of one RMSprop step for one tensor.
struct RMSpropConstants {
    var sign: Float, l2: Bool, weightDecay: Float, alpha: Float, oneMinusAlpha: Float, eps: Float, momentum: Float
    var negLR: Float
}
