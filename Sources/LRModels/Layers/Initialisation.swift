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

/// The weight (shape `weightShape`, fan-in `fanIn`) and optional bias (`weightShape[0]` values) of a Linear or Conv
/// layer named `name`, initialised as PyTorch does, weight first then bias from the same generator.
func defaultInitialisedParameters(name: String, weightShape: [Int], fanIn: Int, bias: Bool,
                                  rng: inout Xoshiro256) -> (weight: Parameter, bias: Parameter?) {
    let bound = 1 / Float(fanIn).squareRoot()
    let w = Tensor(shape: weightShape)
    fillUniform(w, bound: bound, rng: &rng)
    let weight = Parameter(name: name + ".weight", value: w)
    guard bias else { return (weight, nil) }
    let b = Tensor(shape: [weightShape[0]])
    fillUniform(b, bound: bound, rng: &rng)
    return (weight, Parameter(name: name + ".bias", value: b))
}
