import LRTensor

/// A layer with an explicit, symmetric forward/backward pair.
///
/// `forward` caches what `backward` needs; `backward` takes dL/d(output), accumulates dL/d(parameters) into each
/// parameter's `grad`, and returns dL/d(input). Returned tensors are owned by the layer and reused between steps:
/// callers read them before the next call and never keep them.
public protocol Layer: AnyObject {
    func forward(_ input: Tensor, training: Bool) -> Tensor
    /// `needsInputGradient: false` lets the first layer skip computing dL/d(input) (nobody reads it); it then
    /// returns its `gradOutput` argument or any tensor, unspecified.
    func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor
    var parameters: [Parameter] { get }
    var buffers: [NamedTensor] { get }
}
