import LRTensor

// Small helpers the layers share: read-only pointer access and shape checks that allocate nothing when the shape
// already matches (an array literal stored into `shape` would be a heap allocation on every step).

extension Tensor {
    /// Read-only access to the storage (several reads of one tensor may overlap; a write may not).
    @inline(__always)
    func withReadPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// Makes the shape [a, b] unless it already is.
    @inline(__always)
    func ensureShape(_ a: Int, _ b: Int) {
        if shape.count != 2 || shape[0] != a || shape[1] != b { resize([a, b]) }
    }

    /// Makes the shape [a, b, c, d] unless it already is.
    @inline(__always)
    func ensureShape(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
        if shape.count != 4 || shape[0] != a || shape[1] != b || shape[2] != c || shape[3] != d {
            resize([a, b, c, d])
        }
    }

    /// Makes the shape equal to `other`'s unless it already is.
    @inline(__always)
    func ensureShape(like other: Tensor) {
        if shape != other.shape { resize(other.shape) }
    }
}

/// A generator shared by reference between a model and its dropout layers, so the model can save and restore the
/// one state that decides every mask.
public final class RandomSource: @unchecked Sendable {
    public var generator: Xoshiro256
    public init(seed: UInt64) { generator = Xoshiro256(seed: seed) }
    public init(_ generator: Xoshiro256) { self.generator = generator }
}

/// PyTorch's default initialisation for Linear and Conv layers: `kaiming_uniform_(a=sqrt(5))` for the weight, which is
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
@inline(__always)
func fillUniform(_ t: Tensor, bound: Float, rng: inout Xoshiro256) {
    t.withBuffer { p in
        for i in p.indices { p[i] = rng.uniform(-bound, bound) }
    }
}
