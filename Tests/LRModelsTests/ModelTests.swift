import Testing
import LRModels
import LRTensor

@Suite("Models")
struct ModelTests {
    static let fashionShape = [1, 28, 28]

    @Test func mlpNamesAndParameterCount() throws {
        let model = try ModelFactory.make(name: "mlp", sampleShape: Self.fashionShape, classCount: 10, seed: 0)
        #expect(model.parameters.map(\.name) == ["fc1.weight", "fc1.bias", "head.weight", "head.bias"])
        #expect(model.parameters.map(\.shape) == [[256, 784], [256], [10, 256], [10]])
        #expect(model.parameterCount == 203_530)
        #expect(model.buffers.isEmpty)
        #expect(model.summary == "mlp 784-256-10")
        let deep = try ModelFactory.make(name: "mlp", sampleShape: [2], classCount: 3, seed: 0, hidden: [32, 16])
        #expect(deep.parameters.map(\.name) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "head.weight", "head.bias"])
        #expect(deep.parameterCount == 2 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3)
    }

    @Test func convnetNamesShapesAndBuffers() throws {
        let model = try ModelFactory.make(name: "convnet", sampleShape: Self.fashionShape, classCount: 10, seed: 0)
        let names = model.parameters.map(\.name)
        for expected in ["stem.conv.weight", "stem.bn.weight", "stem.bn.bias", "stage1.block1.conv1.weight",
                         "stage1.block1.bn2.bias", "stage2.block1.bn1.bias", "stage2.block1.shortcut.conv.weight",
                         "stage2.block1.shortcut.bn.weight", "head.weight", "head.bias"] {
            #expect(names.contains(expected), "missing \(expected)")
        }
        #expect(!names.contains("stage1.block1.shortcut.conv.weight"))
        #expect(names.last == "head.bias")
        #expect(Set(names).count == names.count)
        let buffers = model.buffers.map(\.name)
        #expect(buffers.contains("stem.bn.running_mean") && buffers.contains("stage2.block1.shortcut.bn.running_var"))
        #expect(buffers.count == 3 * 6)
        // stem 9·16 + bn 32; stage1: 2 convs 16·16·9 + 2 bns 64; stage2: 16·32·9 + 32·32·9 + 2 bns 128,
        // shortcut 16·32 + 64; head 32·10 + 10
        let expectedCount = 144 + 32 + (2 * 2304 + 64) + (4608 + 9216 + 128) + (512 + 64) + 330
        #expect(model.parameterCount == expectedCount)
        let x = randomTensor([2, 1, 28, 28], seed: 1)
        #expect(model.forward(x, training: true).shape == [2, 10])
        #expect(model.forward(x, training: false).shape == [2, 10])
    }

    @Test func unknownModelNameListsTheValidOnes() {
        #expect {
            try ModelFactory.make(name: "transformer", sampleShape: [2], classCount: 3, seed: 0)
        } throws: { error in
            let text = "\(error)"
            return text.contains("transformer") && text.contains("mlp") && text.contains("convnet")
        }
        // A convnet cannot take 2-D points.
        #expect(throws: ModelError.self) { try ModelFactory.make(name: "convnet", sampleShape: [2], classCount: 3, seed: 0) }
    }

    @Test func initialisationFollowsPyTorchDefaults() throws {
        let model = try ModelFactory.make(name: "mlp", sampleShape: Self.fashionShape, classCount: 10, seed: 3)
        let w = model.parameters[0].value.storage, b = model.parameters[1].value.storage
        let bound = 1 / Float(784).squareRoot()
        #expect(w.allSatisfy { abs($0) <= bound } && b.allSatisfy { abs($0) <= bound })
        let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
        let variance = w.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(w.count)
        // U(−a, a): mean 0, variance a²/3.
        #expect(abs(mean) < 0.02 * Double(bound))
        #expect(abs(variance / (Double(bound * bound) / 3) - 1) < 0.02)
        #expect(w.max()! > 0.99 * bound && w.min()! < -0.99 * bound)
        let headBound = 1 / Float(256).squareRoot()
        #expect(model.parameters[2].value.storage.allSatisfy { abs($0) <= headBound })
        #expect(model.parameters[2].value.storage.max()! > 0.9 * headBound)

        let conv = try ModelFactory.make(name: "convnet", sampleShape: Self.fashionShape, classCount: 10, seed: 3)
        let byName = Dictionary(uniqueKeysWithValues: conv.parameters.map { ($0.name, $0.value.storage) })
        #expect(byName["stem.bn.weight"]!.allSatisfy { $0 == 1 } && byName["stem.bn.bias"]!.allSatisfy { $0 == 0 })
        // Conv fan-in = in_channels · k · k: 16·9 for stage1.block1.conv1.
        let convBound = 1 / Float(144).squareRoot()
        let cw = byName["stage1.block1.conv1.weight"]!
        #expect(cw.allSatisfy { abs($0) <= convBound } && cw.max()! > 0.95 * convBound)
        let bnBuffers = Dictionary(uniqueKeysWithValues: conv.buffers.map { ($0.name, $0.tensor.storage) })
        #expect(bnBuffers["stem.bn.running_mean"]!.allSatisfy { $0 == 0 } && bnBuffers["stem.bn.running_var"]!.allSatisfy { $0 == 1 })
    }

    @Test func sameSeedSameModelBitForBit() throws {
        for name in ModelFactory.names {
            let a = try ModelFactory.make(name: name, sampleShape: Self.fashionShape, classCount: 10, seed: 42, dropout: 0.2)
            let b = try ModelFactory.make(name: name, sampleShape: Self.fashionShape, classCount: 10, seed: 42, dropout: 0.2)
            let c = try ModelFactory.make(name: name, sampleShape: Self.fashionShape, classCount: 10, seed: 43, dropout: 0.2)
            #expect(a.exportState() == b.exportState())
            #expect(a.exportState() != c.exportState())
            let x = randomTensor([4, 1, 28, 28], seed: 5)
            #expect(a.forward(x, training: true).storage == b.forward(x, training: true).storage)
            #expect(a.forward(x, training: false).storage == b.forward(x, training: false).storage)
        }
    }

    @Test func dropoutStateRestoresTheSameMasks() throws {
        let model = try ModelFactory.make(name: "mlp", sampleShape: [2], classCount: 3, seed: 1, hidden: [64], dropout: 0.5)
        let x = randomTensor([8, 2], seed: 2)
        let saved = model.dropoutRNG
        let first = model.forward(x, training: true).storage
        let second = model.forward(x, training: true).storage
        #expect(first != second)
        model.dropoutRNG = saved
        #expect(model.forward(x, training: true).storage == first)
        #expect(model.forward(x, training: true).storage == second)
        // Evaluation ignores dropout and draws nothing.
        let before = model.dropoutRNG
        #expect(model.forward(x, training: false).storage == model.forward(x, training: false).storage)
        #expect(model.dropoutRNG == before)
    }

    @Test func dropoutTrainAndEvalModes() {
        let layer = Dropout(p: 0.25, random: RandomSource(seed: 9))
        let x = Tensor(shape: [100, 100], repeating: 1)
        #expect(layer.forward(x, training: false).storage == x.storage)
        let y = layer.forward(x, training: true).storage
        let zeros = y.filter { $0 == 0 }.count
        #expect(abs(Double(zeros) / 10_000 - 0.25) < 0.02)
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        let dx = layer.backward(Tensor(shape: [100, 100], repeating: 2), needsInputGradient: true).storage
        #expect(zip(dx, y).allSatisfy { ($0 == 0) == ($1 == 0) })
    }

    @Test func batchNormTrainAndEvalModes() {
        let bn = BatchNorm2d(name: "bn", channels: 2)
        #expect(bn.buffers.map(\.name) == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"])
        var rng = Xoshiro256(seed: 4)
        let x = Tensor(shape: [4, 2, 3, 3], storage: (0..<72).map { i in (i / 9) % 2 == 0 ? 3 + 2 * rng.normal() : -1 + 0.5 * rng.normal() })
        // Evaluation with fresh running statistics (0, 1): y = x / sqrt(1 + eps).
        let yEval = bn.forward(x, training: false).storage
        for i in 0..<72 { #expect(abs(yEval[i] - x.storage[i] / (1 + 1e-5 as Float).squareRoot()) < 1e-5) }
        #expect(bn.runningMean.storage == [0, 0])
        // Training: per-channel mean 0, variance 1; running stats move by momentum 0.1 with the unbiased variance.
        let y = bn.forward(x, training: true).storage
        for c in 0..<2 {
            let xs = channel(x.storage, c), ys = channel(y, c)
            let m = xs.reduce(0, +) / 36, v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 36
            let ym = ys.reduce(0, +) / 36, yv = ys.map { ($0 - ym) * ($0 - ym) }.reduce(0, +) / 36
            #expect(abs(ym) < 1e-5 && abs(yv - 1) < 1e-3)
            let runningMean = Double(bn.runningMean.storage[c]), runningVar = Double(bn.runningVar.storage[c])
            let expectedVar: Double = 0.9 + 0.1 * v * 36 / 35
            #expect(abs(runningMean - 0.1 * m) < 1e-5)
            #expect(abs(runningVar - expectedVar) < 1e-4)
        }
        // Evaluation now uses the running statistics.
        let yEval2 = bn.forward(x, training: false).storage
        let rm = bn.runningMean.storage[0], rv = bn.runningVar.storage[0]
        #expect(abs(yEval2[0] - (x.storage[0] - rm) / (rv + 1e-5).squareRoot()) < 1e-5)
        #expect(yEval2 != y)
    }

    private func channel(_ values: [Float], _ c: Int) -> [Double] {
        (0..<4).flatMap { n in (0..<9).map { Double(values[(n * 2 + c) * 9 + $0]) } }
    }

    @Test func exportImportRoundTripAndStrictness() throws {
        let a = try ModelFactory.make(name: "convnet", sampleShape: [1, 8, 8], classCount: 4, seed: 1, width: 4)
        let b = try ModelFactory.make(name: "convnet", sampleShape: [1, 8, 8], classCount: 4, seed: 2, width: 4)
        let x = randomTensor([3, 1, 8, 8], seed: 3)
        _ = a.forward(x, training: true)  // moves the running statistics away from their initial values
        let state = a.exportState()
        #expect(state.count == a.parameters.count + a.buffers.count)
        try b.importState(state)
        #expect(b.exportState() == state)
        #expect(a.forward(x, training: false).storage == b.forward(x, training: false).storage)

        var missing = state
        missing["head.bias"] = nil
        #expect { try b.importState(missing) } throws: { "\($0)".contains("missing head.bias") }
        var wrongSize = state
        wrongSize["head.weight"] = [1, 2, 3]
        #expect { try b.importState(wrongSize) } throws: { "\($0)".contains("head.weight holds 3 values") }
        var extra = state
        extra["fc9.weight"] = [0]
        #expect { try b.importState(extra) } throws: { "\($0)".contains("unexpected fc9.weight") }
        #expect(b.exportState() == state)
    }

    @Test func trainingStepsReduceTheLossOnSpirals() throws {
        // A smoke test of forward, loss and backward together (plain SGD written here); the trainer tests learning.
        let data = Spirals.make(trainCount: 600, testCount: 300)
        let model = try ModelFactory.make(name: "mlp", dataset: data, seed: 0, hidden: [64])
        #expect(model.summary == "mlp 2-64-3")
        let batcher = try Batcher(dataset: data, batchSize: 50, seed: 0)
        let loss = SoftmaxCrossEntropy()
        let before = model.evaluate(data.test, sampleShape: data.sampleShape, chunkSize: 128)
        for _ in 0..<300 {
            batcher.next()
            model.zeroGrad()
            model.lossAndGradients(input: batcher.input, labels: batcher.labels, loss: loss)
            for p in model.parameters {
                for i in 0..<p.value.count { p.value.storage[i] -= 0.5 * p.grad.storage[i] }
            }
        }
        let after = model.evaluate(data.test, sampleShape: data.sampleShape, chunkSize: 128)
        #expect(after.count == 300)
        #expect(after.loss < 0.8 * before.loss, "loss \(before.loss) → \(after.loss)")
    }

    /// Checks every parameter gradient of `model` under cross-entropy against finite differences.
    private func networkReport(_ model: Network, input: Tensor, labels: [Int32], fallbackSteps: [Float]) -> GradientCheck.Report {
        let loss = SoftmaxCrossEntropy(labelSmoothing: 0.1)
        model.zeroGrad()
        model.lossAndGradients(input: input, labels: labels, loss: loss)
        let targets = model.parameters.map {
            GradientCheck.Target(name: $0.name, tensor: $0.value, analytic: $0.grad.storage)
        }
        var check = GradientCheck()
        check.eps = 4e-3
        check.fallbackSteps = fallbackSteps
        check.atol = 2e-3
        return check.run(targets) {
            loss.compute(logits: model.forward(input, training: true), labels: labels, computeGradient: false).loss
        }
    }

    @Test func convnetShapedNetworkGradientMatchesFiniteDifferences() {
        // The convnet's structure with smooth activations, so every element must match (ReLU kinks are covered
        // layer by layer).
        var rng = Xoshiro256(seed: 7)
        let root = Sequential([
            Conv2d(name: "stem.conv", inChannels: 1, outChannels: 2, kernel: 3, padding: 1, bias: false, rng: &rng),
            BatchNorm2d(name: "stem.bn", channels: 2), GELU(),
            ResidualBlock(name: "stage1.block1", inChannels: 2, outChannels: 2, activation: { GELU() }, rng: &rng),
            ResidualBlock(name: "stage2.block1", inChannels: 2, outChannels: 4, stride: 2, activation: { GELU() }, rng: &rng),
            GlobalAvgPool2d(),
            Linear(name: "head", inFeatures: 4, outFeatures: 3, rng: &rng),
        ])
        let model = Network(kind: "convnet", summary: "test", root: root, sampleShape: [1, 6, 6], classCount: 3,
                            random: RandomSource(seed: 0))
        let report = networkReport(model, input: randomTensor([4, 1, 6, 6], seed: 8), labels: [0, 2, 1, 2],
                                   fallbackSteps: [1.5e-3])
        #expect(report.failures.isEmpty, "\(report)")
    }

    @Test func mlpGradientMatchesFiniteDifferences() throws {
        let model = try ModelFactory.make(name: "mlp", sampleShape: [1, 3, 3], classCount: 4, seed: 9, hidden: [6, 5])
        let report = networkReport(model, input: randomTensor([5, 1, 3, 3], seed: 10), labels: [0, 3, 1, 2, 2],
                                   fallbackSteps: [1.5e-3, 5e-4])
        #expect(report.failures.isEmpty, "\(report)")
    }
}
