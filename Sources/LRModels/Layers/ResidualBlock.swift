import LRTensor

/// A ResNet basic block (He et al. 2015, "Deep Residual Learning for Image Recognition", fig. 2):
///
///     main:      conv1 3×3/stride → bn1 → relu → conv2 3×3 → bn2
///     shortcut:  identity, or (channels or stride change) shortcut.conv 1×1/stride → shortcut.bn
///     y = relu(main(x) + shortcut(x))
///
///     x: [N, Cin, H, W]   y: [N, Cout, Ho, Wo]   Ho = (H − 1)/stride + 1
///     backward: g = relu'(dy);  dx = main'(g) + shortcut'(g)
///
/// Convolutions have no bias (the batch norms that follow carry one), as in torchvision's ResNet. Names:
/// `<name>.conv1.weight`, `<name>.bn1.weight`, …, `<name>.shortcut.conv.weight`, `<name>.shortcut.bn.bias`.
/// `activation` makes the two nonlinearities (ReLU unless told otherwise; parameter-free layers only).
public final class ResidualBlock: Layer, @unchecked Sendable {
    public let conv1: Conv2d, bn1: BatchNorm2d
    public let conv2: Conv2d, bn2: BatchNorm2d
    /// nil for the identity shortcut.
    public let shortcutConv: Conv2d?, shortcutBN: BatchNorm2d?
    private let relu1: Layer, relu2: Layer
    private let sum = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])

    public init(name: String, inChannels: Int, outChannels: Int, stride: Int = 1,
                activation: () -> Layer = { ReLU() }, rng: inout Xoshiro256) {
        relu1 = activation()
        relu2 = activation()
        precondition(relu1.parameters.isEmpty, "ResidualBlock: the activation must have no parameters")
        conv1 = Conv2d(name: name + ".conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3,
                       stride: stride, padding: 1, bias: false, rng: &rng)
        bn1 = BatchNorm2d(name: name + ".bn1", channels: outChannels)
        conv2 = Conv2d(name: name + ".conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3,
                       stride: 1, padding: 1, bias: false, rng: &rng)
        bn2 = BatchNorm2d(name: name + ".bn2", channels: outChannels)
        if stride != 1 || inChannels != outChannels {
            shortcutConv = Conv2d(name: name + ".shortcut.conv", inChannels: inChannels, outChannels: outChannels,
                                  kernel: 1, stride: stride, padding: 0, bias: false, rng: &rng)
            shortcutBN = BatchNorm2d(name: name + ".shortcut.bn", channels: outChannels)
        } else {
            shortcutConv = nil
            shortcutBN = nil
        }
    }

    public var parameters: [Parameter] {
        conv1.parameters + bn1.parameters + conv2.parameters + bn2.parameters
            + (shortcutConv?.parameters ?? []) + (shortcutBN?.parameters ?? [])
    }
    public var buffers: [NamedTensor] { bn1.buffers + bn2.buffers + (shortcutBN?.buffers ?? []) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var h = conv1.forward(x, training: training)
        h = bn1.forward(h, training: training)
        h = relu1.forward(h, training: training)
        h = conv2.forward(h, training: training)
        let main = bn2.forward(h, training: training)
        var short = x
        if let shortcutConv, let shortcutBN {
            short = shortcutBN.forward(shortcutConv.forward(x, training: training), training: training)
        }
        precondition(short.shape == main.shape, "ResidualBlock: shortcut \(short.shape) vs main \(main.shape)")
        sum.ensureShape(like: main)
        let n = main.count
        main.withReadPointer { pm in
            short.withReadPointer { ps in
                sum.withPointer { py in
                    for i in 0..<n { py[i] = pm[i] + ps[i] }
                }
            }
        }
        return relu2.forward(sum, training: training)
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let g = relu2.backward(gradOutput, needsInputGradient: true)
        var d = bn2.backward(g, needsInputGradient: true)
        d = conv2.backward(d, needsInputGradient: true)
        d = relu1.backward(d, needsInputGradient: true)
        d = bn1.backward(d, needsInputGradient: true)
        let dMain = conv1.backward(d, needsInputGradient: needsInputGradient)
        var dShort = g
        if let shortcutConv, let shortcutBN {
            let ds = shortcutBN.backward(g, needsInputGradient: true)
            dShort = shortcutConv.backward(ds, needsInputGradient: needsInputGradient)
        }
        guard needsInputGradient else { return gradOutput }
        gradInput.ensureShape(like: dMain)
        let n = dMain.count
        dMain.withReadPointer { pa in
            dShort.withReadPointer { pb in
                gradInput.withPointer { pdx in
                    for i in 0..<n { pdx[i] = pa[i] + pb[i] }
                }
            }
        }
        return gradInput
    }
}
