import LRTensor

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
