import LRTensor

/// A fully connected layer, `y = x · Wᵀ + b` (PyTorch's `nn.Linear`, same weight layout).
///
///     x:  [B, in]     (or [B, d1, d2, …] with d1·d2·… = in: read as flattened, no copy)
///     W:  [out, in]   b: [out]
///     y:  [B, out]
public final class Linear: Layer, @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?

    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var input: Tensor?

    /// Parameters are `<name>.weight` and `<name>.bias`, drawn from `rng` as PyTorch does (weight, then bias).
    public init(name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true, rng: inout Xoshiro256) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear \(name): sizes must be positive")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        (weight, self.bias) = defaultInitialisedParameters(
            name: name, weightShape: [outFeatures, inFeatures], fanIn: inFeatures, bias: bias, rng: &rng)
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public var buffers: [NamedTensor] { [] }

    // linear_forward: y = b (broadcast over rows), then y += x · Wᵀ
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let rows = x.shape[0], nIn = inFeatures, nOut = outFeatures
        precondition(x.count == rows * nIn, "Linear: input \(x.shape) does not hold \(nIn) features per row")
        input = x
        output.ensureShape(rows, nOut)
        x.withReadPointer { px in
            weight.value.withReadPointer { pw in
                output.withPointer { py in
                    var beta: Float = 0
                    if let bias {
                        bias.value.withReadPointer { pb in
                            for r in 0..<rows { (py + r * nOut).update(from: pb, count: nOut) }
                        }
                        beta = 1
                    }
                    BLAS.gemm(transB: true, m: rows, n: nOut, k: nIn, a: px, b: pw, beta: beta, c: py)
                }
            }
        }
        return output
    }

    // linear_backward: dW += dyᵀ · x,  db += Σ_rows dy,  dx = dy · W
    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let rows = x.shape[0], nIn = inFeatures, nOut = outFeatures
        gradOutput.withReadPointer { pdy in
            x.withReadPointer { px in
                weight.grad.withPointer { pdw in
                    BLAS.gemm(transA: true, m: nOut, n: nIn, k: rows, a: pdy, b: px, beta: 1, c: pdw)
                }
            }
            if let bias {
                bias.grad.withPointer { pdb in
                    for r in 0..<rows {
                        let row = pdy + r * nOut
                        for j in 0..<nOut { pdb[j] += row[j] }
                    }
                }
            }
        }
        guard needsInputGradient else { return gradOutput }
        gradInput.ensureShape(like: x)
        gradOutput.withReadPointer { pdy in
            weight.value.withReadPointer { pw in
                gradInput.withPointer { pdx in
                    BLAS.gemm(m: rows, n: nIn, k: nOut, a: pdy, b: pw, c: pdx)
                }
            }
        }
        return gradInput
    }
}
