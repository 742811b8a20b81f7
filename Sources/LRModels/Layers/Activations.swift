#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LRTensor

/// `y = max(x, 0)`; the backward pass reads the mask from the cached output.
///
///     x, y, dy, dx: any shape, same shape
public final class ReLU: Layer, @unchecked Sendable {
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])

    public init() {}
    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        output.ensureShape(like: x)
        let n = x.count
        x.withReadPointer { px in
            output.withPointer { py in
                for i in 0..<n { let v = px[i]; py[i] = v > 0 ? v : 0 }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        reluBackward(output: output, gradOutput: gradOutput, into: gradInput)
        return gradInput
    }
}

/// dx = dy where y > 0, else 0 (mask and product in one pass), for a ReLU whose output was `y`.
func reluBackward(output y: Tensor, gradOutput: Tensor, into gradInput: Tensor) {
    gradInput.ensureShape(like: y)
    let n = y.count
    y.withReadPointer { py in
        gradOutput.withReadPointer { pdy in
            gradInput.withPointer { pdx in
                // Both loads unconditional, so this is a vector select, not a branch per element.
                for i in 0..<n { let d = pdy[i], v = py[i]; pdx[i] = v > 0 ? d : 0 }
            }
        }
    }
}

/// The exact GELU, `y = x · Φ(x) = x/2 · (1 + erf(x/√2))` (PyTorch's default `approximate='none'`).
///
///     x, y, dy, dx: any shape, same shape;   dy/dx = Φ(x) + x · φ(x)
public final class GELU: Layer, @unchecked Sendable {
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var input: Tensor?

    public init() {}
    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        input = x
        output.ensureShape(like: x)
        let n = x.count
        let invSqrt2: Float = 0.707_106_781_186_547_5
        x.withReadPointer { px in
            output.withPointer { py in
                for i in 0..<n { let v = px[i]; py[i] = 0.5 * v * (1 + erff(v * invSqrt2)) }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        guard let x = input else { preconditionFailure("GELU.backward before forward") }
        gradInput.ensureShape(like: x)
        let n = x.count
        let invSqrt2: Float = 0.707_106_781_186_547_5
        let invSqrt2Pi: Float = 0.398_942_280_401_432_7
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                gradInput.withPointer { pdx in
                    for i in 0..<n {
                        let v = px[i]
                        let cdf = 0.5 * (1 + erff(v * invSqrt2))
                        let pdf = invSqrt2Pi * expf(-0.5 * v * v)
                        pdx[i] = pdy[i] * (cdf + v * pdf)
                    }
                }
            }
        }
        return gradInput
    }
}

/// Inverted dropout: in training each element is kept with probability 1-p and scaled by 1/(1-p); in evaluation it
/// is the identity. Masks come from a `RandomSource` the model owns, so saving its state makes a resumed run draw the
/// same masks.
///
///     x, y, mask, dy, dx: any shape, same shape;   y = x · mask,  dx = dy · mask,  mask ∈ {0, 1/(1-p)}
public final class Dropout: Layer, @unchecked Sendable {
    public var p: Float
    public let random: RandomSource

    private let mask = Tensor(shape: [0])
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var wasIdentity = true

    public init(p: Float, random: RandomSource) {
        precondition(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got \(p)")
        self.p = p
        self.random = random
    }

    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard training && p > 0 else { wasIdentity = true; return x }
        wasIdentity = false
        mask.ensureShape(like: x)
        output.ensureShape(like: x)
        let n = x.count
        let scale: Float = p >= 1 ? 0 : 1 / (1 - p)
        // Keep when a uniform 32-bit draw is >= p·2³²: two draws per 64-bit output.
        let threshold = UInt64(min(Double(p) * 4_294_967_296.0, 4_294_967_295.0))
        let dropAll = p >= 1
        var g = random.generator
        mask.withPointer { pm in
            var i = 0
            while i < n {
                let r = g.next()
                pm[i] = (!dropAll && (r & 0xFFFF_FFFF) >= threshold) ? scale : 0
                if i + 1 < n { pm[i + 1] = (!dropAll && (r >> 32) >= threshold) ? scale : 0 }
                i += 2
            }
        }
        random.generator = g
        x.withReadPointer { px in
            mask.withReadPointer { pm in
                output.withPointer { py in
                    for i in 0..<n { py[i] = px[i] * pm[i] }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient, !wasIdentity else { return gradOutput }
        gradInput.ensureShape(like: mask)
        let n = mask.count
        gradOutput.withReadPointer { pdy in
            mask.withReadPointer { pm in
                gradInput.withPointer { pdx in
                    for i in 0..<n { pdx[i] = pdy[i] * pm[i] }
                }
            }
        }
        return gradInput
    }
}

/// Flattens every dimension after the first: [B, d1, d2, …] → [B, d1·d2·…]. Copies (tensors own their storage).
///
///     x: [B, …]   y: [B, F]   dy: [B, F]   dx: [B, …]
public final class Flatten: Layer, @unchecked Sendable {
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var inputShape: [Int] = []

    public init() {}
    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if inputShape != x.shape { inputShape = x.shape }
        let rows = x.shape[0]
        output.ensureShape(rows, rows == 0 ? 0 : x.count / rows)
        output.assign(from: x)
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        if gradInput.shape != inputShape { gradInput.resize(inputShape) }
        gradInput.assign(from: gradOutput)
        return gradInput
    }
}
