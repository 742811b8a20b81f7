import Testing
import LRModels
import LRTensor

@Suite("Layer gradients against finite differences")
struct LayerGradientTests {
    let check = GradientCheck()

    @Test func linear() {
        var rng = Xoshiro256(seed: 1)
        let layer = Linear(name: "fc", inFeatures: 7, outFeatures: 5, rng: &rng)
        let report = check.checkLayer(layer, input: randomTensor([4, 7], seed: 2))
        #expect(report.failures.isEmpty, "\(report)")
        #expect(report.checked == 4 * 7 + 5 * 7 + 5)
    }

    @Test func linearReadsHigherRankInputAsFlattened() {
        var rng = Xoshiro256(seed: 3)
        let layer = Linear(name: "fc", inFeatures: 12, outFeatures: 3, rng: &rng)
        let x = randomTensor([2, 1, 3, 4], seed: 4)
        let report = check.checkLayer(layer, input: x)
        #expect(report.failures.isEmpty, "\(report)")
        #expect(layer.backward(Tensor(shape: [2, 3]), needsInputGradient: true).shape == [2, 1, 3, 4])
    }

    @Test func relu() {
        let report = check.checkLayer(ReLU(), input: randomTensor([3, 11], seed: 5, margin: 0.05))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func gelu() {
        let report = check.checkLayer(GELU(), input: randomTensor([3, 11], seed: 6, scale: 2))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func geluMatchesExactErfForm() {
        let x = Tensor(shape: [1, 5], storage: [-3, -1, 0, 0.5, 2])
        let y = GELU().forward(x, training: false).storage
        // x·Φ(x) from tables of the normal CDF.
        let expected: [Float] = [-0.004_049_7, -0.158_655_3, 0, 0.345_731_3, 1.954_499_7]
        for (a, b) in zip(y, expected) { #expect(abs(a - b) < 1e-5) }
    }

    @Test func dropoutWithFixedMask() {
        let random = RandomSource(seed: 7)
        let saved = random.generator
        let layer = Dropout(p: 0.3, random: random)
        let report = check.checkLayer(layer, input: randomTensor([4, 10], seed: 8)) { random.generator = saved }
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func flatten() {
        let layer = Flatten()
        let x = randomTensor([2, 3, 2, 2], seed: 9)
        #expect(layer.forward(x, training: true).shape == [2, 12])
        let report = check.checkLayer(layer, input: x)
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test(arguments: [(stride: 1, padding: 1, kernel: 3), (stride: 2, padding: 1, kernel: 3),
                      (stride: 2, padding: 0, kernel: 1), (stride: 1, padding: 0, kernel: 1), (stride: 2, padding: 2, kernel: 3)])
    func conv2d(geometry: (stride: Int, padding: Int, kernel: Int)) {
        var rng = Xoshiro256(seed: 10)
        let layer = Conv2d(name: "conv", inChannels: 3, outChannels: 4, kernel: geometry.kernel, stride: geometry.stride,
                           padding: geometry.padding, bias: true, rng: &rng)
        let x = randomTensor([2, 3, 7, 6], seed: 11)
        let y = layer.forward(x, training: true)
        let (ho, wo) = layer.outputSize(h: 7, w: 6)
        #expect(y.shape == [2, 4, ho, wo])
        let report = check.checkLayer(layer, input: x)
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func conv2dMatchesDirectConvolution() {
        var rng = Xoshiro256(seed: 12)
        let layer = Conv2d(name: "conv", inChannels: 2, outChannels: 3, kernel: 3, stride: 2, padding: 1, rng: &rng)
        let x = randomTensor([1, 2, 5, 5], seed: 13)
        let y = layer.forward(x, training: false)
        let w = layer.weight.value.storage, b = layer.bias!.value.storage
        for co in 0..<3 {
            for oh in 0..<3 {
                for ow in 0..<3 {
                    var acc = b[co]
                    for ci in 0..<2 {
                        for kh in 0..<3 {
                            for kw in 0..<3 {
                                let ih = oh * 2 + kh - 1, iw = ow * 2 + kw - 1
                                guard ih >= 0, ih < 5, iw >= 0, iw < 5 else { continue }
                                acc += w[((co * 2 + ci) * 3 + kh) * 3 + kw] * x.storage[(ci * 5 + ih) * 5 + iw]
                            }
                        }
                    }
                    #expect(abs(y.storage[(co * 3 + oh) * 3 + ow] - acc) < 1e-5)
                }
            }
        }
    }

    @Test func maxPool2d() {
        // Distinct values 0.1 apart, so no perturbation changes which input wins.
        var rng = Xoshiro256(seed: 14)
        let perm = rng.permutation(2 * 3 * 6 * 6)
        let x = Tensor(shape: [2, 3, 6, 6], storage: perm.map { Float($0) * 0.1 - 5 })
        let report = check.checkLayer(MaxPool2d(kernel: 2), input: x)
        #expect(report.failures.isEmpty, "\(report)")
        let overlapping = check.checkLayer(MaxPool2d(kernel: 3, stride: 2), input: x)
        #expect(overlapping.failures.isEmpty, "\(overlapping)")
        #expect(MaxPool2d(kernel: 3, stride: 2).forward(x, training: true).shape == [2, 3, 2, 2])
    }

    @Test func globalAvgPool2d() {
        let report = check.checkLayer(GlobalAvgPool2d(), input: randomTensor([2, 3, 4, 5], seed: 15))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func batchNorm1dTraining() {
        let layer = BatchNorm1d(name: "bn", features: 5)
        // Non-trivial affine parameters, so their gradients matter.
        layer.weight.value.storage = [0.5, 1.5, -1, 2, 0.8]
        layer.bias.value.storage = [0.1, -0.2, 0.3, 0, 1]
        let report = check.checkLayer(layer, input: randomTensor([6, 5], seed: 16, scale: 2))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func batchNorm2dTraining() {
        let layer = BatchNorm2d(name: "bn", channels: 3)
        layer.weight.value.storage = [0.5, 1.5, -1]
        layer.bias.value.storage = [0.1, -0.2, 0.3]
        let report = check.checkLayer(layer, input: randomTensor([3, 3, 4, 4], seed: 17, scale: 2))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func batchNorm2dEvaluation() {
        let layer = BatchNorm2d(name: "bn", channels: 2)
        layer.runningMean.storage = [0.3, -0.5]
        layer.runningVar.storage = [2, 0.5]
        layer.weight.value.storage = [1.5, -0.7]
        let report = check.checkLayer(layer, input: randomTensor([2, 2, 3, 3], seed: 18), training: false)
        #expect(report.failures.isEmpty, "\(report)")
    }

    static let blockShapes = [(inChannels: 3, outChannels: 3, stride: 1), (inChannels: 2, outChannels: 4, stride: 2)]

    /// The block's wiring, exactly: with smooth activations every element must match.
    @Test(arguments: blockShapes)
    func residualBlockWithSmoothActivation(shape: (inChannels: Int, outChannels: Int, stride: Int)) {
        var rng = Xoshiro256(seed: 19)
        let block = ResidualBlock(name: "block", inChannels: shape.inChannels, outChannels: shape.outChannels,
                                  stride: shape.stride, activation: { GELU() }, rng: &rng)
        #expect((block.shortcutConv == nil) == (shape.stride == 1 && shape.inChannels == shape.outChannels))
        var check = self.check
        check.eps = 4e-3
        check.fallbackSteps = [1.5e-3]
        let report = check.checkLayer(block, input: randomTensor([3, shape.inChannels, 6, 6], seed: 20))
        #expect(report.failures.isEmpty, "\(report)")
    }

    /// The convnet's second stage as it runs: 16 and 32 channels take the channel-last direct kernels (3×3 stride
    /// 2, 3×3 stride 1, the 1×1 stride-2 shortcut), checked against finite differences end to end.
    @Test func residualBlockOnChannelLastKernels() {
        var rng = Xoshiro256(seed: 21)
        let block = ResidualBlock(name: "block", inChannels: 16, outChannels: 32, stride: 2, activation: { GELU() },
                                  rng: &rng)
        #expect(block.conv1.channelLastPath && block.conv2.channelLastPath && block.shortcutConv!.channelLastPath)
        var check = self.check
        check.eps = 4e-3
        check.fallbackSteps = [1.5e-3]
        // Float32 central differences through 16·9 inputs per output and batch norms over 18 values a channel: an
        // element or two land 2e-3 off with im2col as with these kernels, so the ReLU block's tolerance.
        check.atol = 3e-3
        let report = check.checkLayer(block, input: randomTensor([2, 16, 5, 6], seed: 22))
        #expect(report.failures.isEmpty, "\(report)")
    }

    /// The block as the convnet uses it, with ReLUs.
    @Test(arguments: blockShapes)
    func residualBlock(shape: (inChannels: Int, outChannels: Int, stride: Int)) {
        var rng = Xoshiro256(seed: 19)
        let block = ResidualBlock(name: "block", inChannels: shape.inChannels, outChannels: shape.outChannels,
                                  stride: shape.stride, rng: &rng)
        let x = randomTensor([3, shape.inChannels, 6, 6], seed: 20)
        // The ReLUs sit on batch-normalised pre-activations, some of which a step pushes across zero (a weight of
        // conv1 moves every pre-activation of its channel). Smaller fallback steps resolve most; the smooth variant
        // above checks the wiring exactly, so here a few unresolved kinks are tolerated.
        var kinkTolerant = check
        kinkTolerant.eps = 4e-3
        kinkTolerant.fallbackSteps = [1.5e-3, 5e-4]
        kinkTolerant.atol = 3e-3
        let report = kinkTolerant.checkLayer(block, input: x)
        #expect(report.failureFraction <= 0.03, "\(report)")
        #expect(report.relativeError < 1e-2, "\(report)")
    }

    @Test func sequential() {
        var rng = Xoshiro256(seed: 21)
        let model = Sequential([
            Flatten(),
            Linear(name: "fc1", inFeatures: 12, outFeatures: 8, rng: &rng),
            GELU(),
            BatchNorm1d(name: "bn", features: 8),
            Linear(name: "head", inFeatures: 8, outFeatures: 3, rng: &rng),
        ])
        #expect(model.parameters.map(\.name) == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "head.weight", "head.bias"])
        // A batch of 5 makes the BatchNorm strongly curved: a smaller fallback step resolves it.
        var curved = check
        curved.fallbackSteps = [3e-3]
        let report = curved.checkLayer(model, input: randomTensor([5, 3, 2, 2], seed: 22))
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func skippingTheInputGradientKeepsParameterGradients() {
        var rng = Xoshiro256(seed: 23)
        let model = Sequential([Flatten(), Linear(name: "fc1", inFeatures: 6, outFeatures: 4, rng: &rng), ReLU(),
                                Linear(name: "head", inFeatures: 4, outFeatures: 2, rng: &rng)])
        let x = randomTensor([3, 2, 3], seed: 24)
        let dy = randomTensor([3, 2], seed: 25)
        var grads: [[[Float]]] = []
        for needs in [true, false] {
            for p in model.parameters { p.zeroGrad() }
            _ = model.forward(x, training: true)
            _ = model.backward(dy, needsInputGradient: needs)
            grads.append(model.parameters.map { $0.grad.storage })
        }
        #expect(grads[0] == grads[1])
    }

    @Test(arguments: [Float(0), 0.1])
    func crossEntropy(labelSmoothing: Float) {
        let loss = SoftmaxCrossEntropy(labelSmoothing: labelSmoothing)
        let logits = randomTensor([6, 4], seed: 26, scale: 2)
        let labels: [Int32] = [0, 3, 1, 2, 2, 0]
        _ = loss.compute(logits: logits, labels: labels)
        let target = GradientCheck.Target(name: "logits", tensor: logits, analytic: loss.gradLogits.storage)
        let report = check.run([target]) { loss.compute(logits: logits, labels: labels, computeGradient: false).loss }
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func crossEntropyMatchesPyTorchValues() {
        // torch.nn.functional.cross_entropy(torch.tensor([[1., 2., 3.], [1., -1., 0.5]]), torch.tensor([2, 0]))
        //   = 0.4812814420;  with label_smoothing=0.2: 0.6646147754 (the target is 0.8·onehot + 0.2/3)
        let logits = Tensor(shape: [2, 3], storage: [1, 2, 3, 1, -1, 0.5])
        let plain = SoftmaxCrossEntropy().compute(logits: logits, labels: [2, 0])
        #expect(abs(plain.loss - 0.481_281_442_0) < 1e-5)
        #expect(plain.correct == 2)
        let smooth = SoftmaxCrossEntropy(labelSmoothing: 0.2).compute(logits: logits, labels: [2, 0], computeGradient: false)
        #expect(abs(smooth.loss - 0.664_614_775_4) < 1e-5)
        #expect(SoftmaxCrossEntropy.countCorrect(logits: logits, labels: [1, 0]) == 1)
    }
}
