import LRTensor

/// How the image layers (`Conv2d`, `BatchNorm2d`, `ResidualBlock`, `GlobalAvgPool2d`) lay out a 4-D activation.
///
/// Weights keep PyTorch's layout either way ([Cout, Cin, K, K]); only the activations between layers differ.
public enum ActivationLayout: Sendable, Equatable {
    /// [N, C, H, W]: PyTorch's default, one plane per channel.
    case channelsFirst
    /// [N, H, W, C]: a pixel's channels side by side. The convnet keeps its activations so end to end: the direct
    /// convolution kernels work on channel-last images, so their inputs and outputs move by row copies instead of
    /// transposes, and a batch norm reduces a pixel's channels as whole vectors, split across the layer threads by
    /// samples.
    case channelsLast
}

/// [N, C, H, W] → [N, H, W, C] at the front of a channel-last network (the data arrives channels-first);
/// backward transposes the gradient back.
public final class ChannelsLastInput: Layer, @unchecked Sendable {
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])

    public init() {}
    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "ChannelsLastInput: input \(x.shape), expected [N, C, H, W]")
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        output.ensureShape(n, h, w, c)
        transposePlanes(x, outer: n, rows: c, columns: h * w, into: output)
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        let n = gradOutput.shape[0], h = gradOutput.shape[1], w = gradOutput.shape[2], c = gradOutput.shape[3]
        gradInput.ensureShape(n, c, h, w)
        transposePlanes(gradOutput, outer: n, rows: h * w, columns: c, into: gradInput)
        return gradInput
    }
}

/// For each of `outer` matrices [rows, columns] in `x`, its transpose [columns, rows] in `y`.
func transposePlanes(_ x: Tensor, outer: Int, rows: Int, columns: Int, into y: Tensor) {
    x.withReadPointer { px in
        y.withPointer { py in
            if rows == 1 || columns == 1 {
                py.update(from: px, count: outer * rows * columns)
                return
            }
            for o in 0..<outer {
                let src = px + o * rows * columns, dst = py + o * rows * columns
                for r in 0..<rows {
                    for c in 0..<columns { dst[c * rows + r] = src[r * columns + c] }
                }
            }
        }
    }
}
