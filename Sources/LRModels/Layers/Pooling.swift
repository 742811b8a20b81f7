import LRTensor

/// Max pooling over NCHW tensors without padding (PyTorch's `nn.MaxPool2d(kernel, stride)`); the backward pass
/// routes each gradient to the input that won (the first one on a tie).
///
///     x: [N, C, H, W]   y, argmax: [N, C, Ho, Wo]   Ho = (H − K)/stride + 1, Wo likewise
///     dx[argmax] += dy
public final class MaxPool2d: Layer, @unchecked Sendable {
    public let kernel: Int
    public let stride: Int

    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init(kernel: Int, stride: Int? = nil) {
        precondition(kernel > 0 && (stride ?? kernel) > 0, "MaxPool2d: kernel and stride must be positive")
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "MaxPool2d: input \(x.shape), expected [N, C, H, W]")
        if inputShape != x.shape { inputShape = x.shape }
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ho = (h - kernel) / stride + 1, wo = (w - kernel) / stride + 1
        precondition(ho > 0 && wo > 0, "MaxPool2d: input \(h)x\(w) is smaller than the kernel")
        output.ensureShape(n, c, ho, wo)
        if argmax.count != output.count { argmax = [Int32](repeating: 0, count: output.count) }
        let k = kernel, s = stride
        x.withReadPointer { px in
            output.withPointer { py in
                argmax.withUnsafeMutableBufferPointer { am in
                    for plane in 0..<(n * c) {
                        let xp = px + plane * h * w
                        for oh in 0..<ho {
                            for ow in 0..<wo {
                                var best = -Float.infinity
                                var bestIndex = (oh * s) * w + ow * s
                                for kh in 0..<k {
                                    let r = (oh * s + kh) * w + ow * s
                                    for kw in 0..<k where xp[r + kw] > best {
                                        best = xp[r + kw]
                                        bestIndex = r + kw
                                    }
                                }
                                let o = (plane * ho + oh) * wo + ow
                                py[o] = best
                                am[o] = Int32(plane * h * w + bestIndex)
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        if gradInput.shape != inputShape { gradInput.resize(inputShape) }
        let m = output.count
        gradInput.withPointer { pdx in
            pdx.update(repeating: 0, count: gradInput.count)
            gradOutput.withReadPointer { pdy in
                argmax.withUnsafeBufferPointer { am in
                    for o in 0..<m { pdx[Int(am[o])] += pdy[o] }
                }
            }
        }
        return gradInput
    }
}

/// Global average pooling: the mean of each channel's plane (PyTorch's `AdaptiveAvgPool2d(1)` + flatten).
///
///     x: [N, C, H, W] (or channel-last [N, H, W, C])   y: [N, C]   dx[n, c, :, :] = dy[n, c] / (H·W)
public final class GlobalAvgPool2d: Layer, @unchecked Sendable {
    public let layout: ActivationLayout
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private var inputShape: [Int] = []

    public init(layout: ActivationLayout = .channelsFirst) { self.layout = layout }
    public var parameters: [Parameter] { [] }
    public var buffers: [NamedTensor] { [] }

    /// (samples, channels, pixels per channel) of a 4-D input in this layout.
    private func dimensions(_ shape: [Int]) -> (n: Int, c: Int, hw: Int) {
        layout == .channelsLast ? (shape[0], shape[3], shape[1] * shape[2]) : (shape[0], shape[1], shape[2] * shape[3])
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4, "GlobalAvgPool2d: input \(x.shape), expected \(layout == .channelsLast ? "[N, H, W, C]" : "[N, C, H, W]")")
        if inputShape != x.shape { inputShape = x.shape }
        let (n, c, hw) = dimensions(x.shape)
        output.ensureShape(n, c)
        let scale = 1 / Float(hw)
        x.withReadPointer { px in
            output.withPointer { py in
                if layout == .channelsLast {
                    for s in 0..<n {
                        let y = py + s * c, image = px + s * hw * c
                        y.update(repeating: 0, count: c)
                        for p in 0..<hw {
                            for ch in 0..<c { y[ch] += image[p * c + ch] }
                        }
                        for ch in 0..<c { y[ch] *= scale }
                    }
                    return
                }
                for p in 0..<n * c {
                    let row = px + p * hw
                    var acc: Float = 0
                    for i in 0..<hw { acc += row[i] }
                    py[p] = acc * scale
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return gradOutput }
        if gradInput.shape != inputShape { gradInput.resize(inputShape) }
        let (n, c, hw) = dimensions(inputShape)
        let scale = 1 / Float(hw)
        gradOutput.withReadPointer { pdy in
            gradInput.withPointer { pdx in
                if layout == .channelsLast {
                    for s in 0..<n {
                        let image = pdx + s * hw * c, dy = pdy + s * c
                        for ch in 0..<c { image[ch] = dy[ch] * scale }
                        for p in 1..<max(1, hw) { (image + p * c).update(from: image, count: c) }
                    }
                    return
                }
                for p in 0..<n * c {
                    let v = pdy[p] * scale, row = pdx + p * hw
                    for i in 0..<hw { row[i] = v }
                }
            }
        }
        return gradInput
    }
}
