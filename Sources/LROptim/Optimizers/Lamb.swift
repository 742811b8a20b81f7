import Foundation
import LRTensor

/// LAMB (You et al., 2019), following timm 1.0.31 `timm.optim.Lamb` (NVIDIA FusedLAMB semantics).
///
///     g ← g / max(‖G‖/max_grad_norm, 1)      (global norm over all parameters; max_grad_norm=none: off)
///     m ← lerp(m, g, 1−β₁) (grad_averaging; else β₁m + g);  v ← β₂v + (1−β₂)g²
///     u ← (m/(1−β₁ᵗ)) / (√v/√(1−β₂ᵗ) + ε) + λθ
///     r ← ‖θ‖/‖u‖ (1 where either is 0; ≤ 1 when trust_clip), applied where λ ≠ 0 or always_adapt
///     θ ← θ − γ·r·u
///
/// The global clip is one setting for the whole optimizer: the first group's `max_grad_norm` (groups get it from
/// the spec, so they agree unless a group rule overrides it; the golden trajectories are recorded that way).
public final class Lamb: OptimizerBase, @unchecked Sendable {
    public static let kind: OptimizerDescriptor = OptimizerDescriptor(
        name: "lamb", reference: "timm.optim.Lamb 1.0.31", defaultLR: 1e-3,
        parameters: [
            HyperParameter("bias_correction", .bool, 1, doc: "apply Adam's bias corrections"),
            HyperParameter("betas", .betas, 0.9, 0.999, doc: "decay rates of the first and second moments"),
            HyperParameter("eps", .number, 1e-6, doc: "added to the denominator"),
            HyperParameter("weight_decay", .number, 0.01, doc: "added to the update (and enables the trust ratio)"),
            HyperParameter("grad_averaging", .bool, 1, doc: "scale the gradient by (1-β₁) in the first moment"),
            HyperParameter("max_grad_norm", .optionalNumber, 1.0, doc: "global gradient-norm clip (none: off)"),
            HyperParameter("trust_clip", .bool, 0, doc: "clamp the trust ratio at 1 (LAMBC)"),
            HyperParameter("always_adapt", .bool, 0, doc: "apply the trust ratio also where weight_decay = 0"),
        ],
        check: { lr, h in
            try checkLR(lr); try checkEps(h); try checkBetas(h); try checkWeightDecay(h)
            if let c = h[.maxGradNorm], c < 0 { throw OptimError("Invalid max_grad_norm value: \(pyRepr(c))") }
        },
        build: { Lamb(groups: $0, descriptor: Lamb.kind) })

    /// The global clip divisor for the current step (nil: no clipping).
    private var clipDivisor: Float?
    /// Scratch for the update of one parameter, grown once to the largest parameter.
    private var scratch = Tensor(shape: [0])

    public override func willStep() {
        clipDivisor = nil
        guard let first = groups.first else { return }
        let maxNorm = first[.maxGradNorm]
        guard maxNorm > 0 else { return }
        var sumSq: Float = 0
        for group in groups {
            for p in group.params {
                let norm = Float(p.grad.sumOfSquares.squareRoot())
                sumSq += norm * norm
            }
        }
        let globalNorm = sumSq.squareRoot()
        clipDivisor = max(globalNorm / Float(maxNorm), 1)
    }

    /// m and v.
    override public class var stateSlots: [StateSlot] { [.expAvg, .expAvgSq] }

    public override func update(_ p: Parameter, state: ParamState, group: ParamGroup) {
        let n = p.value.count
        if scratch.count < n { scratch = Tensor(shape: [n]) }
        let b1 = group[.beta1], b2 = group[.beta2], wdD = group[.weightDecay]
        let averaging = group[.gradAveraging] != 0
        let beta3 = averaging ? 1 - b1 : 1.0
        let m = state.buffer(.expAvg, like: p), v = state.buffer(.expAvgSq, like: p)
        state.step += 1
        let step = state.step
        var bc1 = 1.0, bc2 = 1.0
        if group[.biasCorrection] != 0 { bc1 = 1 - pow(b1, step); bc2 = 1 - pow(b2, step) }
        let useLerp = beta3 == 1 - b1
        let fb1 = Float(b1), fb3 = Float(beta3), fb2 = Float(b2), w2 = Float(1 - b2)
        let fbc1 = Float(bc1), bc2Sqrt = Float(pow(bc2, 0.5)), eps = Float(group[.eps]), wd = Float(wdD)
        let adapt = wdD != 0 || group[.alwaysAdapt] != 0
        let trustClip = group[.trustClip] != 0
        let clip = clipDivisor
        let negLR = Float(-group.lr)
        p.value.withPointer { w in p.grad.withPointer { gp in m.withPointer { mp in v.withPointer { vp in
            scratch.withPointer { u in
                for i in 0..<n {
                    var g = gp[i]
                    if let clip { g = g / clip }
                    let mi = useLerp ? lerp(mp[i], g, fb3) : mp[i] * fb1 + fb3 * g
                    mp[i] = mi
                    let vi = vp[i] * fb2 + w2 * g * g
                    vp[i] = vi
                    let denom = vi.squareRoot() / bc2Sqrt + eps
                    var ui = (mi / fbc1) / denom
                    if wdD != 0 { ui = ui + wd * w[i] }
                    u[i] = ui
                }
                // The norms in their own loop: the one above then vectorises, and these sums keep their
                // sequential order (reordering them would change the trust ratio's last bits).
                var wSq: Double = 0, uSq: Double = 0
                for i in 0..<n {
                    wSq += Double(w[i]) * Double(w[i])
                    uSq += Double(u[i]) * Double(u[i])
                }
                var ratio: Float = 1
                if adapt {
                    let wn = Float(wSq.squareRoot()), un = Float(uSq.squareRoot())
                    ratio = (wn > 0 && un > 0) ? wn / un : 1
                    if trustClip { ratio = min(ratio, 1) }
                    for i in 0..<n { u[i] = u[i] * ratio }
                }
                for i in 0..<n { w[i] = w[i] + negLR * u[i] }
            }
        } } } }
    }
}
