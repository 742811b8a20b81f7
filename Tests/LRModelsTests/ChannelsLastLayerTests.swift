import Testing
import LRModels
import LRTensor

/// The channel-last layers (the convnet's layout) compute what the NCHW layers compute, transposed: outputs, input
/// gradients and parameter gradients, over every path they take (direct kernels with outputs and gradients read
/// and written in place or through padded images, the 1-channel stem, im2col for other channel counts).
@Suite("Channel-last layers")
struct ChannelsLastLayerTests {
    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// [N, C, H, W] → [N, H, W, C]
    private func channelsLast(_ t: Tensor) -> Tensor {
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = [Float](repeating: 0, count: t.count)
        for s in 0..<n { for ch in 0..<c { for p in 0..<h * w { out[(s * h * w + p) * c + ch] = t.storage[(s * c + ch) * h * w + p] } } }
        return Tensor(shape: [n, h, w, c], storage: out)
    }

    /// [N, H, W, C] → [N, C, H, W]
    private func channelsFirst(_ t: Tensor) -> Tensor {
        let (n, h, w, c) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = [Float](repeating: 0, count: t.count)
        for s in 0..<n { for ch in 0..<c { for p in 0..<h * w { out[(s * c + ch) * h * w + p] = t.storage[(s * h * w + p) * c + ch] } } }
        return Tensor(shape: [n, c, h, w], storage: out)
    }

    @Test(arguments: [
        // Direct, compact rows: output, weight gradient and input gradient in place.
        ConvCase(cin: 16, cout: 16, h: 8, w: 8, kernel: 3, stride: 1, padding: 1, threads: 2),
        // Direct, rows that do not fill pixel blocks: through the padded images.
        ConvCase(cin: 16, cout: 32, h: 7, w: 6, kernel: 3, stride: 1, padding: 1, threads: 1),
        ConvCase(cin: 32, cout: 16, h: 5, w: 7, kernel: 3, stride: 1, padding: 1, threads: 3),
        // Strided: the scatter, compact (Wo = 4) and not.
        ConvCase(cin: 16, cout: 32, h: 8, w: 8, kernel: 3, stride: 2, padding: 1, threads: 2),
        ConvCase(cin: 16, cout: 32, h: 7, w: 6, kernel: 3, stride: 2, padding: 1, threads: 2),
        // The 1×1 shortcut reads its unpadded input in place.
        ConvCase(cin: 16, cout: 32, h: 8, w: 8, kernel: 1, stride: 2, padding: 0, threads: 2),
        ConvCase(cin: 16, cout: 32, h: 6, w: 7, kernel: 1, stride: 2, padding: 0, threads: 1),
        // Input channels the blocks do not divide: direct forward and weight gradient, im2col input gradient.
        ConvCase(cin: 1, cout: 16, h: 8, w: 8, kernel: 3, stride: 1, padding: 1, threads: 2),
        ConvCase(cin: 3, cout: 16, h: 6, w: 5, kernel: 3, stride: 1, padding: 1, threads: 1),
        ConvCase(cin: 6, cout: 32, h: 7, w: 7, kernel: 3, stride: 2, padding: 1, threads: 2),
        // Neither: im2col in the channel-last layout.
        ConvCase(cin: 2, cout: 3, h: 6, w: 5, kernel: 3, stride: 1, padding: 1, threads: 1),
        ConvCase(cin: 3, cout: 5, h: 7, w: 6, kernel: 1, stride: 2, padding: 0, threads: 2),
    ])
    func convolutionMatchesChannelsFirst(c: ConvCase) {
        let before = BLAS.computeThreads
        BLAS.setThreads(c.threads)
        defer { BLAS.setThreads(before) }
        for bias in [false, true] {
            var rngA = Xoshiro256(seed: 70), rngB = Xoshiro256(seed: 70)
            let conv = Conv2d(name: "c", inChannels: c.cin, outChannels: c.cout, kernel: c.kernel, stride: c.stride,
                              padding: c.padding, bias: bias, layout: .channelsLast, rng: &rngA)
            let reference = Conv2d(name: "c", inChannels: c.cin, outChannels: c.cout, kernel: c.kernel,
                                   stride: c.stride, padding: c.padding, bias: bias, algorithm: .im2col, rng: &rngB)
            for step in 0..<2 {  // the second step reuses every buffer
                let x = randomTensor([5, c.cin, c.h, c.w], seed: 71 + UInt64(step))
                let y = conv.forward(channelsLast(x), training: true)
                let expected = reference.forward(x, training: true)
                #expect(y.shape == [5, expected.shape[2], expected.shape[3], c.cout])
                #expect(close(channelsFirst(y).storage, expected.storage))
                let dy = randomTensor(expected.shape, seed: 73 + UInt64(step))
                let dx = conv.backward(channelsLast(dy), needsInputGradient: true)
                let dxExpected = reference.backward(dy, needsInputGradient: true)
                #expect(close(channelsFirst(dx).storage, dxExpected.storage))
                #expect(close(conv.weight.grad.storage, reference.weight.grad.storage))
                if bias { #expect(close(conv.bias!.grad.storage, reference.bias!.grad.storage)) }
            }
            // Without the input gradient (the stem), the parameter gradients still accumulate the same.
            conv.weight.zeroGrad(); reference.weight.zeroGrad()
            let x = randomTensor([3, c.cin, c.h, c.w], seed: 79)
            let y = reference.forward(x, training: true)
            _ = conv.forward(channelsLast(x), training: true)
            let dy = randomTensor(y.shape, seed: 80)
            _ = conv.backward(channelsLast(dy), needsInputGradient: false)
            _ = reference.backward(dy, needsInputGradient: false)
            #expect(close(conv.weight.grad.storage, reference.weight.grad.storage))
        }
    }

    @Test(arguments: [16, 12, 3], [true, false])
    func batchNormMatchesChannelsFirst(channels: Int, training: Bool) {
        for fused in [false, true] {
            let bn = BatchNorm2d(name: "bn", channels: channels, fusedReLU: fused, layout: .channelsLast)
            let reference = BatchNorm2d(name: "bn", channels: channels, fusedReLU: fused)
            for layer in [bn, reference] {
                layer.weight.value.storage = (0..<channels).map { Float($0 % 5) * 0.4 - 0.7 }
                layer.bias.value.storage = (0..<channels).map { Float($0 % 3) * 0.3 - 0.2 }
                layer.runningMean.storage = (0..<channels).map { Float($0) * 0.05 }
                layer.runningVar.storage = (0..<channels).map { 0.5 + Float($0) * 0.1 }
            }
            let x = randomTensor([19, channels, 5, 6], seed: 81, scale: 2)
            let y = bn.forward(channelsLast(x), training: training)
            #expect(close(channelsFirst(y).storage, reference.forward(x, training: training).storage, tolerance: 1e-5))
            #expect(close(bn.runningMean.storage, reference.runningMean.storage, tolerance: 1e-6))
            #expect(close(bn.runningVar.storage, reference.runningVar.storage, tolerance: 1e-6))
            let dy = randomTensor(x.shape, seed: 82)
            let dx = bn.backward(channelsLast(dy), needsInputGradient: true)
            #expect(close(channelsFirst(dx).storage, reference.backward(dy, needsInputGradient: true).storage))
            #expect(close(bn.weight.grad.storage, reference.weight.grad.storage))
            #expect(close(bn.bias.grad.storage, reference.bias.grad.storage))
        }
    }

    @Test func globalAveragePoolMatchesChannelsFirst() {
        let pool = GlobalAvgPool2d(layout: .channelsLast), reference = GlobalAvgPool2d()
        let x = randomTensor([4, 6, 3, 5], seed: 83)
        #expect(close(pool.forward(channelsLast(x), training: true).storage, reference.forward(x, training: true).storage,
                      tolerance: 1e-6))
        let dy = randomTensor([4, 6], seed: 84)
        #expect(channelsFirst(pool.backward(dy, needsInputGradient: true)).storage
                == reference.backward(dy, needsInputGradient: true).storage)
    }

    @Test func inputLayerTransposesAndBack() {
        let layer = ChannelsLastInput()
        let x = randomTensor([3, 4, 5, 2], seed: 85)
        #expect(layer.forward(x, training: true).storage == channelsLast(x).storage)
        let dy = channelsLast(randomTensor([3, 4, 5, 2], seed: 86))
        #expect(layer.backward(dy, needsInputGradient: true).storage == channelsFirst(dy).storage)
    }

    /// The convnet as built (channel-last) against the same network built channels-first from the same seed:
    /// logits and every parameter gradient.
    @Test func convnetMatchesItsChannelsFirstTwin() throws {
        let shape = [1, 12, 12]
        let model = try ModelFactory.make(name: "convnet", sampleShape: shape, classCount: 10, seed: 5, width: 16)
        var rng = Xoshiro256(seed: 5)
        let workspace = ConvWorkspace()
        let twin = Network(kind: "convnet", summary: "twin", root: Sequential([
            Conv2d(name: "stem.conv", inChannels: 1, outChannels: 16, kernel: 3, padding: 1, bias: false,
                   workspace: workspace, rng: &rng),
            BatchNorm2d(name: "stem.bn", channels: 16, fusedReLU: true),
            ResidualBlock(name: "stage1.block1", inChannels: 16, outChannels: 16, workspace: workspace, rng: &rng),
            ResidualBlock(name: "stage2.block1", inChannels: 16, outChannels: 32, stride: 2, workspace: workspace,
                          rng: &rng),
            GlobalAvgPool2d(),
            Linear(name: "head", inFeatures: 32, outFeatures: 10, rng: &rng),
        ]), sampleShape: shape, classCount: 10, random: RandomSource(seed: 5))
        try twin.importState(model.exportState())
        let x = randomTensor([9] + shape, seed: 87)
        let logits = model.forward(x, training: true).storage
        #expect(close(logits, twin.forward(x, training: true).storage))
        let dy = randomTensor([9, 10], seed: 88)
        model.backward(dy)
        twin.backward(dy)
        for (a, b) in zip(model.parameters, twin.parameters) {
            #expect(a.name == b.name)
            #expect(close(a.grad.storage, b.grad.storage, tolerance: 1e-3), "\(a.name)")
        }
        let evaluated = model.forward(x, training: false).storage
        #expect(close(evaluated, twin.forward(x, training: false).storage))
    }

    /// Chunks of samples, not threads, decide every sum (convolutions and batch norms): the convnet's logits and
    /// gradients are the same bit for bit with 1, 2 or 3 threads.
    @Test func convnetDoesNotDependOnTheThreadCount() throws {
        let before = BLAS.computeThreads
        defer { BLAS.setThreads(before) }
        var results: [[[Float]]] = []
        for threads in [1, 2, 3] {
            BLAS.setThreads(threads)
            let model = try ModelFactory.make(name: "convnet", sampleShape: [1, 12, 12], classCount: 10, seed: 6)
            let x = randomTensor([21, 1, 12, 12], seed: 89)
            let logits = model.forward(x, training: true).storage
            model.backward(randomTensor([21, 10], seed: 90))
            results.append([logits] + model.parameters.map(\.grad.storage) + model.buffers.map(\.tensor.storage))
        }
        #expect(results[0] == results[1] && results[0] == results[2])
    }

    /// A batch norm fed by a convolution takes the per-sample moments the convolution recorded while writing its
    /// output: the same numbers, bit for bit, as the batch norm computing them itself; a stale record (evaluation,
    /// another tensor) is not used.
    @Test func statisticsRecordedByTheConvolutionAreTheBatchNormsOwn() {
        func pair(recorded: Bool) -> (Conv2d, BatchNorm2d) {
            var rng = Xoshiro256(seed: 91)
            let conv = Conv2d(name: "c", inChannels: 16, outChannels: 16, kernel: 3, padding: 1, bias: false,
                              layout: .channelsLast, rng: &rng)
            let bn = BatchNorm2d(name: "bn", channels: 16, fusedReLU: true, layout: .channelsLast)
            if recorded { bn.takeStatistics(from: conv) }
            return (conv, bn)
        }
        let (conv, bn) = pair(recorded: true), (plainConv, plainBN) = pair(recorded: false)
        for step in 0..<3 {
            let x = channelsLast(randomTensor([10, 16, 8, 8], seed: 92 + UInt64(step)))
            let training = step != 1
            let y = bn.forward(conv.forward(x, training: training), training: training).storage
            let expected = plainBN.forward(plainConv.forward(x, training: training), training: training).storage
            #expect(y == expected)
            #expect(bn.runningMean.storage == plainBN.runningMean.storage)
            #expect(bn.runningVar.storage == plainBN.runningVar.storage)
        }
        // Another tensor through the same batch norm: it computes its own statistics.
        let other = channelsLast(randomTensor([10, 16, 8, 8], seed: 95))
        #expect(bn.forward(other, training: true).storage == plainBN.forward(other, training: true).storage)
    }
}
