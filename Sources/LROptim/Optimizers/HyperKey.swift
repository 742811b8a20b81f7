/// A key of `ParamGroup.hyper` (PyTorch's name), so that an optimizer reads `group[.beta1]`: a misspelt key does
/// not compile, where a misspelt string read 0.
public struct HyperKey: Hashable, Sendable, CustomStringConvertible {
    /// The name in `ParamGroup.hyper`, specs and checkpoints.
    public let name: String
    init(_ name: String) { self.name = name }
    public var description: String { name }

    public static let beta1 = HyperKey("beta1")
    public static let beta2 = HyperKey("beta2")
    public static let eps = HyperKey("eps")
    public static let weightDecay = HyperKey("weight_decay")
    public static let maximize = HyperKey("maximize")
    public static let amsgrad = HyperKey("amsgrad")
    public static let momentum = HyperKey("momentum")
    public static let dampening = HyperKey("dampening")
    public static let nesterov = HyperKey("nesterov")
    public static let lrDecay = HyperKey("lr_decay")
    public static let initialAccumulatorValue = HyperKey("initial_accumulator_value")
    public static let alpha = HyperKey("alpha")
    public static let centered = HyperKey("centered")
    public static let finalLR = HyperKey("final_lr")
    public static let gamma = HyperKey("gamma")
    public static let amsbound = HyperKey("amsbound")
    public static let biasCorrection = HyperKey("bias_correction")
    public static let gradAveraging = HyperKey("grad_averaging")
    public static let maxGradNorm = HyperKey("max_grad_norm")
    public static let trustClip = HyperKey("trust_clip")
    public static let alwaysAdapt = HyperKey("always_adapt")
    public static let decoupledWeightDecay = HyperKey("decoupled_weight_decay")
    public static let momentumDecay = HyperKey("momentum_decay")
    public static let rho = HyperKey("rho")
}

extension ParamGroup {
    /// A hyperparameter of this group. The optimizer fills in every key its descriptor declares when it is built,
    /// so a read finds one.
    @inline(__always)
    public subscript(key: HyperKey) -> Double {
        get { hyper[key.name] ?? 0 }
        set { hyper[key.name] = newValue }
    }
}

extension Dictionary where Key == String, Value == Double {
    /// `hyper[.eps]` in validation, over the same string keys.
    @inline(__always)
    public subscript(key: HyperKey) -> Double? { self[key.name] }
}
