import LRModels
import LRTensor

/// One shared finite-difference checker.
///
/// For each target tensor (an input or a parameter value) and each checked element i, the numeric derivative is the
/// central difference (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h with L summed in Double; it must match the analytic
/// derivative within `atol + rtol · max(|analytic|, |numeric|)`.
///
/// Networks with ReLUs inside (after a BatchNorm nothing keeps pre-activations away from zero) have kinks that a
/// step can straddle, which spoils that one central difference. `steps` lists several step sizes; an element passes
/// when the difference at any of them matches (a wrong gradient matches at none: every step converges to the true
/// derivative). Smooth layers use the single step `eps`.
struct GradientCheck {
    struct Target {
        let name: String
        let tensor: Tensor
        let analytic: [Float]
    }

    struct Report: CustomStringConvertible {
        var checked = 0
        var failures: [String] = []
        /// ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) over every checked element.
        var relativeError: Double = 0
        var failureFraction: Double { checked == 0 ? 0 : Double(failures.count) / Double(checked) }
        var description: String {
            "checked \(checked), failed \(failures.count), relative error \(relativeError): \(failures.prefix(6).joined(separator: "; "))"
        }
    }

    var eps: Float = 1e-2
    /// Extra, smaller steps tried when `eps` does not match (see above); empty for smooth layers.
    var fallbackSteps: [Float] = []
    var rtol: Double = 1e-2
    var atol: Double = 1e-3
    /// At most this many elements per target (evenly spread) keep big tensors quick.
    var maxPerTarget = 400

    func run(_ targets: [Target], loss: () -> Double) -> Report {
        var report = Report()
        var diffSq: Double = 0, aSq: Double = 0, nSq: Double = 0
        for target in targets {
            let n = target.tensor.count
            precondition(target.analytic.count == n, "\(target.name): analytic gradient has \(target.analytic.count) values for \(n)")
            let step = max(1, n / maxPerTarget)
            for i in stride(from: 0, to: n, by: step) {
                let original = target.tensor.storage[i]
                let analytic = Double(target.analytic[i])
                var numeric = Double.nan
                for h in [eps] + fallbackSteps {
                    target.tensor.storage[i] = original + h
                    let plus = loss()
                    target.tensor.storage[i] = original - h
                    let minus = loss()
                    target.tensor.storage[i] = original
                    let candidate = (plus - minus) / (2 * Double(h))
                    if numeric.isNaN || abs(candidate - analytic) < abs(numeric - analytic) { numeric = candidate }
                    if abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)) { break }
                }
                report.checked += 1
                diffSq += (analytic - numeric) * (analytic - numeric)
                aSq += analytic * analytic
                nSq += numeric * numeric
                if abs(analytic - numeric) > atol + rtol * max(abs(analytic), abs(numeric)) {
                    report.failures.append("\(target.name)[\(i)] analytic \(analytic) numeric \(numeric)")
                }
            }
        }
        report.relativeError = diffSq.squareRoot() / max(aSq.squareRoot(), nSq.squareRoot(), 1e-12)
        return report
    }

    /// Checks dL/d(input) and dL/d(every parameter) of `layer`, with L = Σ r ⊙ layer(x) for a fixed random r.
    /// `prepare` runs before every forward (e.g. to reset the dropout generator so every forward draws one mask).
    func checkLayer(_ layer: Layer, input: Tensor, training: Bool = true, seed: UInt64 = 99,
                    prepare: () -> Void = {}) -> Report {
        prepare()
        let y = layer.forward(input, training: training)
        var rng = Xoshiro256(seed: seed)
        let r = Tensor(shape: y.shape, storage: (0..<y.count).map { _ in rng.normal() })
        for p in layer.parameters { p.zeroGrad() }
        let dx = layer.backward(r, needsInputGradient: true)
        var targets = [Target(name: "input", tensor: input, analytic: dx.storage)]
        for p in layer.parameters { targets.append(Target(name: p.name, tensor: p.value, analytic: p.grad.storage)) }
        return run(targets) {
            prepare()
            let out = layer.forward(input, training: training)
            var sum: Double = 0
            for i in 0..<out.count { sum += Double(r.storage[i]) * Double(out.storage[i]) }
            return sum
        }
    }
}

/// A tensor of standard normal values, optionally pushed at least `margin` away from zero (away from ReLU's kink).
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, margin: Float = 0) -> Tensor {
    var rng = Xoshiro256(seed: seed)
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, storage: (0..<n).map { _ in
        let v = rng.normal() * scale
        return v >= 0 ? v + margin : v - margin
    })
}
