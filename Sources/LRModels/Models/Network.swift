import LRTensor

/// Why a model could not be built or restored. `description` is one line a person can act on.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A trainable model: a root layer plus everything a trainer and a checkpoint need.
///
/// One training step:
///
///     model.zeroGrad()
///     let logits = model.forward(batcher.input, training: true)
///     let result = loss.compute(logits: logits, labels: batcher.labels)
///     model.backward(loss.gradLogits)
///     optimizer.step()
public final class Network: @unchecked Sendable {
    /// The factory name ("mlp", "convnet").
    public let kind: String
    /// A one-line summary: "mlp 784-256-10", "convnet 1x28x28 16-32 → 10".
    public let summary: String
    public let root: Layer
    /// Every trainable parameter, in a stable order (construction order: input to output).
    public let parameters: [Parameter]
    /// Every non-trainable state tensor (BatchNorm running statistics), in a stable order.
    public let buffers: [NamedTensor]
    /// The shape of one input sample ([1, 28, 28], [2] …) and the number of classes (logits per sample).
    public let sampleShape: [Int]
    public let classCount: Int
    /// The generator behind every dropout mask, shared with the dropout layers.
    public let random: RandomSource
    /// Samples per forward in `evaluate`: layers keep activations for the whole chunk, so a convnet (about 1 MB per
    /// 28×28 sample) evaluates in training-sized chunks while an MLP takes 1000 at a time.
    public let evalChunkSize: Int
    /// Whether the large products run in the layers' own threads (`BLAS.computeThreads`: the convnet's
    /// convolutions and batch norms) rather than in OpenBLAS, which is then best kept at one thread
    /// (`BLAS.setLibraryThreads`).
    public let layerThreaded: Bool

    public init(kind: String, summary: String, root: Layer, sampleShape: [Int], classCount: Int, random: RandomSource,
                evalChunkSize: Int = 1000, layerThreaded: Bool = false) {
        precondition(evalChunkSize > 0, "Network: evalChunkSize must be positive")
        self.evalChunkSize = evalChunkSize
        self.layerThreaded = layerThreaded
        self.kind = kind
        self.summary = summary
        self.root = root
        self.parameters = root.parameters
        self.buffers = root.buffers
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.random = random
        var names = Set<String>()
        for name in parameters.map(\.name) + buffers.map(\.name) {
            precondition(names.insert(name).inserted, "Network: duplicate tensor name \(name)")
        }
    }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// The dropout generator's state: save it in a checkpoint and set it on restore so masks continue identically.
    public var dropoutRNG: Xoshiro256 {
        get { random.generator }
        set { random.generator = newValue }
    }

    /// Logits [B, classCount] for a batch [B, ...sampleShape]. The result is owned by the model (valid until the
    /// next forward). `training` selects batch statistics and active dropout.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        root.forward(input, training: training)
    }

    /// Accumulates dL/d(parameter) into every parameter's `grad` from dL/d(logits) of the last forward.
    public func backward(_ gradLogits: Tensor) {
        _ = root.backward(gradLogits, needsInputGradient: false)
    }

    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }

    /// Forward, loss and backward for one batch (gradients accumulate: call `zeroGrad()` first).
    @discardableResult
    public func lossAndGradients(input: Tensor, labels: [Int32], loss: SoftmaxCrossEntropy) -> LossResult {
        let logits = forward(input, training: true)
        let result = loss.compute(logits: logits, labels: labels, computeGradient: true)
        backward(loss.gradLogits)
        return result
    }

    /// Mean loss (no label smoothing) and top-1 accuracy over a whole split, in evaluation mode, in chunks of
    /// `chunkSize` (default `evalChunkSize`).
    public func evaluate(_ split: DataSplit, sampleShape: [Int], chunkSize: Int? = nil) -> LossResult {
        let loss = SoftmaxCrossEntropy()
        var total: Double = 0, correct = 0, count = 0
        for batch in EvalBatches(split: split, sampleShape: sampleShape, chunkSize: chunkSize ?? evalChunkSize) {
            let logits = forward(batch.input, training: false)
            let r = loss.compute(logits: logits, labels: batch.labels, computeGradient: false)
            total += r.loss * Double(r.count)
            correct += r.correct
            count += r.count
        }
        return LossResult(loss: count == 0 ? 0 : total / Double(count), correct: correct, count: count)
    }

    // MARK: - Checkpoints

    /// Every parameter value and buffer by name (`fc1.weight`, `stem.bn.running_mean` …), flattened row-major.
    public func exportState() -> [String: [Float]] {
        var state: [String: [Float]] = [:]
        for p in parameters { state[p.name] = p.value.storage }
        for b in buffers { state[b.name] = b.tensor.storage }
        return state
    }

    /// Restores what `exportState` produced. Strict, like PyTorch's `load_state_dict`: every name must be present
    /// with the right element count and no name may be unknown; on error nothing is changed.
    public func importState(_ state: [String: [Float]]) throws {
        var targets: [(String, Tensor)] = parameters.map { ($0.name, $0.value) }
        targets += buffers.map { ($0.name, $0.tensor) }
        var problems: [String] = []
        for (name, tensor) in targets {
            guard let values = state[name] else { problems.append("missing \(name)"); continue }
            if values.count != tensor.count {
                problems.append("\(name) holds \(values.count) values, the model needs \(tensor.shape) = \(tensor.count)")
            }
        }
        let known = Set(targets.map(\.0))
        for name in state.keys.sorted() where !known.contains(name) { problems.append("unexpected \(name)") }
        if !problems.isEmpty {
            let shown = problems.prefix(4).joined(separator: "; ") + (problems.count > 4 ? "; … (\(problems.count) problems)" : "")
            throw ModelError("checkpoint does not match model \(summary): \(shown)")
        }
        for (name, tensor) in targets {
            let values = state[name]!
            tensor.withPointer { dst in
                values.withUnsafeBufferPointer { src in dst.update(from: src.baseAddress!, count: values.count) }
            }
        }
    }
}
