import LRTensor

/// Layers applied in order. Backward runs them in reverse, and asks a layer for dL/d(input) only when someone reads
/// it: a layer needs its input gradient when the caller does or when any layer before it has parameters. So a model
/// that starts with a parameter-free layer (a Flatten) still skips the first Linear's input-gradient GEMM.
///
///     x → layers[0] → layers[1] → … → y;   dy → layers[last].backward → … → dx
public final class Sequential: Layer, @unchecked Sendable {
    public let layers: [Layer]
    /// `hasParametersBefore[i]`: some layer in `layers[0..<i]` has parameters.
    private let hasParametersBefore: [Bool]

    public init(_ layers: [Layer]) {
        precondition(!layers.isEmpty, "Sequential needs at least one layer")
        self.layers = layers
        var seen = false
        var before: [Bool] = []
        for layer in layers {
            before.append(seen)
            if !layer.parameters.isEmpty { seen = true }
        }
        hasParametersBefore = before
    }

    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }
    public var buffers: [NamedTensor] { layers.flatMap { $0.buffers } }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = x
        for layer in layers { h = layer.forward(h, training: training) }
        return h
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        var g = gradOutput
        var i = layers.count - 1
        while i >= 0 {
            g = layers[i].backward(g, needsInputGradient: needsInputGradient || hasParametersBefore[i])
            i -= 1
        }
        return g
    }
}
