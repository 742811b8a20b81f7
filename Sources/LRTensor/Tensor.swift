/// A dense, contiguous, row-major Float32 array with a shape.
///
/// A reference type on purpose: layers, optimizers and checkpoints share one storage, and the training step
/// writes into it in place. Because the `[Float]` inside is uniquely referenced by its tensor, in-place writes
/// through `withUnsafeMutableBufferPointer` never trigger a copy-on-write copy.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public var storage: [Float]

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    public init(shape: [Int], repeating value: Float = 0) {
        self.shape = shape
        self.storage = [Float](repeating: value, count: shape.reduce(1, *))
    }

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A deep copy: new storage with the same values.
    public func copy() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Reinterprets the shape without moving data (the element count must match).
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    /// Makes this tensor `newShape`, reusing its storage when the element count already fits.
    /// Layers call this on their cached outputs so a steady-state step allocates nothing.
    public func resize(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        if n != storage.count { storage = [Float](repeating: 0, count: n) }
        shape = newShape
    }

    public func fill(_ value: Float) {
        storage.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = value }
        }
    }

    /// Multiplies every element by `factor`, in place.
    public func scale(by factor: Float) {
        storage.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] *= factor }
        }
    }

    /// Copies values (same element count) from another tensor.
    public func assign(from other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        storage.withUnsafeMutableBufferPointer { dst in
            other.storage.withUnsafeBufferPointer { src in
                dst.baseAddress!.update(from: src.baseAddress!, count: src.count)
            }
        }
    }

    @inlinable
    public func withPointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    @inlinable
    public func withBuffer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Σ x², in Double (each square is exact there). Sixteen running sums instead of one: a single sum waits on
    /// every add in turn (≈ 10x slower on a 200k-element gradient), and splitting it is as accurate or better.
    /// The last bits may differ from a strictly sequential sum.
    public var sumOfSquares: Double {
        storage.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return 0 }
            let raw = UnsafeRawPointer(base)
            @inline(__always) func squares(at i: Int) -> SIMD4<Double> {
                let x = SIMD4<Double>(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Float>.stride,
                                                        as: SIMD4<Float>.self))
                return x * x
            }
            var sum0 = SIMD4<Double>(), sum1 = SIMD4<Double>(), sum2 = SIMD4<Double>(), sum3 = SIMD4<Double>()
            var i = 0
            while i + 16 <= p.count {
                sum0 += squares(at: i); sum1 += squares(at: i + 4)
                sum2 += squares(at: i + 8); sum3 += squares(at: i + 12)
                i += 16
            }
            var tail: Double = 0
            while i < p.count { tail += Double(p[i]) * Double(p[i]); i += 1 }
            return ((sum0 + sum1) + (sum2 + sum3)).sum() + tail
        }
    }

    public var allFinite: Bool {
        storage.withUnsafeBufferPointer { p in
            var ok = true
            for v in p where !v.isFinite { ok = false; break }
            return ok
        }
    }
}

/// A trainable tensor with a stable dotted name (`fc1.weight`, `stage2.block1.bn.bias`) and its gradient.
/// Names are how param-group rules, checkpoints and logs refer to parameters.
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.grad = Tensor(shape: value.shape)
    }

    public var shape: [Int] { value.shape }
    public func zeroGrad() { grad.fill(0) }
}

/// Non-trainable state a layer keeps across steps (BatchNorm's running statistics), saved in checkpoints.
public struct NamedTensor: Sendable {
    public let name: String
    public let tensor: Tensor
    public init(name: String, tensor: Tensor) { self.name = name; self.tensor = tensor }
}
