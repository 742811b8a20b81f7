import LRTensor

/// A ResNet basic block (He et al. 2015, "Deep Residual Learning for Image Recognition", fig. 2):
///
///     main:      conv1 3×3/stride → bn1 → relu → conv2 3×3 → bn2
///     shortcut:  identity, or (channels or stride change) shortcut.conv 1×1/stride → shortcut.bn
///     y = relu(main(x) + shortcut(x))
///
///     x: [N, Cin, H, W]   y: [N, Cout, Ho, Wo]   Ho = (H − 1)/stride + 1   (channel-last: [N, H, W, Cin] …)
///     backward: g = relu'(dy);  dx = main'(g) + shortcut'(g)
///
/// Convolutions have no bias (the batch norms that follow carry one), as in torchvision's ResNet. Names:
/// `<name>.conv1.weight`, `<name>.bn1.weight`, …, `<name>.shortcut.conv.weight`, `<name>.shortcut.bn.bias`.
/// `activation` makes the two nonlinearities (ReLU unless told otherwise; parameter-free layers only). With ReLU,
/// the first runs inside bn1's pass and the second inside the sum's.
public final class ResidualBlock: Layer, @unchecked Sendable {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let conv2: Conv2d, bn2: BatchNorm2d
    /// nil for the identity shortcut.
    public let shortcutConv: Conv2d?, shortcutBN: BatchNorm2d?
    /// nil when fused (ReLU).
    private let relu1: Layer?, relu2: Layer?
    private let sum = Tensor(shape: [0])
    private let gradSum = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])

    public init(name: String, inChannels: Int, outChannels: Int, stride: Int = 1,
                activation: () -> Layer = { ReLU() }, workspace: ConvWorkspace = ConvWorkspace(),
                layout: ActivationLayout = .channelsFirst, rng: inout Xoshiro256) {
        let first = activation()
        precondition(first.parameters.isEmpty, "ResidualBlock: the activation must have no parameters")
        let fused = first is ReLU
        relu1 = fused ? nil : first
        relu2 = fused ? nil : activation()
        conv1 = Conv2d(name: name + ".conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3,
                       stride: stride, padding: 1, bias: false, workspace: workspace, layout: layout, rng: &rng)
        bn1 = BatchNorm2d(name: name + ".bn1", channels: outChannels, fusedReLU: fused, layout: layout)
        conv2 = Conv2d(name: name + ".conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3,
                       stride: 1, padding: 1, bias: false, workspace: workspace, layout: layout, rng: &rng)
        bn2 = BatchNorm2d(name: name + ".bn2", channels: outChannels, layout: layout)
        if stride != 1 || inChannels != outChannels {
            shortcutConv = Conv2d(name: name + ".shortcut.conv", inChannels: inChannels, outChannels: outChannels,
                                  kernel: 1, stride: stride, padding: 0, bias: false, workspace: workspace, layout: layout, rng: &rng)
            shortcutBN = BatchNorm2d(name: name + ".shortcut.bn", channels: outChannels, layout: layout)
        } else {
            shortcutConv = nil
            shortcutBN = nil
        }
        bn1.takeStatistics(from: conv1)
        bn2.takeStatistics(from: conv2)
        if let shortcutConv { shortcutBN?.takeStatistics(from: shortcutConv) }
    }

    public var parameters: [Parameter] {
        conv1.parameters + bn1.parameters + conv2.parameters + bn2.parameters
            + (shortcutConv?.parameters ?? []) + (shortcutBN?.parameters ?? [])
    }
    public var buffers: [NamedTensor] { bn1.buffers + bn2.buffers + (shortcutBN?.buffers ?? []) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = conv1.forward(x, training: training)
        h = bn1.forward(h, training: training)
        if let relu1 { h = relu1.forward(h, training: training) }
        h = conv2.forward(h, training: training)
        let main = bn2.forward(h, training: training)
        var short = x
        if let shortcutConv, let shortcutBN {
            short = shortcutBN.forward(shortcutConv.forward(x, training: training), training: training)
        }
        precondition(short.shape == main.shape, "ResidualBlock: shortcut \(short.shape) vs main \(main.shape)")
        sum.ensureShape(like: main)
        let n = main.shape[0], relu = relu2 == nil
        main.withReadPointer { pm in
            short.withReadPointer { ps in
                sum.withPointer { py in
                    nonisolated(unsafe) let (pm, ps, py) = (pm, ps, py)
                    LayerThreads.forEachElementChunk(samples: n, perSample: main.count / n) { elements in
                        if relu {
                            for i in elements { let v = pm[i] + ps[i]; py[i] = v > 0 ? v : 0 }
                        } else {
                            for i in elements { py[i] = pm[i] + ps[i] }
                        }
                    }
                }
            }
        }
        return relu2?.forward(sum, training: training) ?? sum
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let g: Tensor
        if let relu2 {
            g = relu2.backward(gradOutput, needsInputGradient: true)
        } else {
            gradSum.ensureShape(like: sum)
            sum.withReadPointer { py in
                gradOutput.withReadPointer { pdy in
                    gradSum.withPointer { pg in
                        nonisolated(unsafe) let (py, pdy, pg) = (py, pdy, pg)
                        LayerThreads.forEachElementChunk(samples: sum.shape[0], perSample: sum.count / sum.shape[0]) {
                            for i in $0 { let d = pdy[i], v = py[i]; pg[i] = v > 0 ? d : 0 }
                        }
                    }
                }
            }
            g = gradSum
        }
        var d = bn2.backward(g, needsInputGradient: true)
        d = conv2.backward(d, needsInputGradient: true)
        if let relu1 { d = relu1.backward(d, needsInputGradient: true) }
        d = bn1.backward(d, needsInputGradient: true)
        let dMain = conv1.backward(d, needsInputGradient: needsInputGradient)
        var dShort = g
        if let shortcutConv, let shortcutBN {
            let ds = shortcutBN.backward(g, needsInputGradient: true)
            dShort = shortcutConv.backward(ds, needsInputGradient: needsInputGradient)
        }
        guard needsInputGradient else { return gradOutput }
        gradInput.ensureShape(like: dMain)
        let n = dMain.shape[0]
        dMain.withReadPointer { pa in
            dShort.withReadPointer { pb in
                gradInput.withPointer { pdx in
                    nonisolated(unsafe) let (pa, pb, pdx) = (pa, pb, pdx)
                    LayerThreads.forEachElementChunk(samples: n, perSample: dMain.count / n) {
                        for i in $0 { pdx[i] = pa[i] + pb[i] }
                    }
                }
            }
        }
        return gradInput
    }
}
