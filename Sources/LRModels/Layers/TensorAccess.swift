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
