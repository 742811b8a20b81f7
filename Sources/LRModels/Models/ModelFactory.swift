import LRTensor

/// The models lrtop trains (`--model`): their names are what the CLI, config files, logs and checkpoints spell.
public enum ModelKind: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// Flatten → [Linear → ReLU (→ Dropout)] per hidden size → Linear head.
    case mlp
    /// A small ResNet for images: conv-bn-relu stem, two residual stages, global average pool, linear head.
    case convnet

    /// A model by name, in any case (`MLP`); one line naming the valid ones when it is none of them.
    public init(name: String) throws(ModelError) {
        guard let kind = ModelKind(rawValue: name.lowercased()) else {
            throw ModelError("unknown model '\(name)': valid models are \(ModelFactory.names.joined(separator: ", "))")
        }
        self = kind
    }

    /// Read as the CLI reads it, so a checkpoint of a run started with `--model MLP` still loads.
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        do { self = try ModelKind(name: name) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public var description: String { rawValue }
}

/// Builds the models the CLI offers, initialised as PyTorch initialises them, from a seed.
public enum ModelFactory {
    /// The names `make` accepts.
    public static let names = ModelKind.allCases.map(\.rawValue)

    /// Builds model `name` for samples of `sampleShape` and `classCount` classes.
    ///
    /// - `mlp`: Flatten → [Linear → ReLU (→ Dropout)] per hidden size → Linear head. Names `fc1`, `fc2` …, `head`.
    /// - `convnet`: a small ResNet for [C, H, W] images, its activations channel-last inside: stem conv3×3-bn-relu (`stem.conv`, `stem.bn`, the ReLU fused
    ///   into the batch norm's pass),
    ///   `stage1.block1` (width channels), `stage2.block1` (2·width, stride 2, projection shortcut),
    ///   global average pool (→ Dropout), Linear `head`. `hidden` is ignored.
    ///
    /// The same seed gives the same model bit for bit; dropout masks come from a generator derived from the seed.
    /// Throws `ModelError` for an unknown name (listing the valid ones) or an input the model cannot take.
    public static func make(name: String, sampleShape: [Int], classCount: Int, seed: UInt64,
                            hidden: [Int] = [256], dropout: Float = 0, width: Int = 16) throws -> Network {
        try make(ModelKind(name: name), sampleShape: sampleShape, classCount: classCount, seed: seed, hidden: hidden,
                 dropout: dropout, width: width)
    }

    /// Builds a model of `kind` for samples of `sampleShape` and `classCount` classes (see `make(name:...)`).
    public static func make(_ kind: ModelKind, sampleShape: [Int], classCount: Int, seed: UInt64,
                            hidden: [Int] = [256], dropout: Float = 0, width: Int = 16) throws -> Network {
        guard classCount > 1 else { throw ModelError("a model needs at least 2 classes, the dataset has \(classCount)") }
        guard dropout >= 0 && dropout < 1 else { throw ModelError("dropout must be in [0, 1), got \(dropout)") }
        guard !sampleShape.isEmpty, sampleShape.allSatisfy({ $0 > 0 }) else {
            throw ModelError("invalid sample shape \(sampleShape)")
        }
        var rng = Xoshiro256(seed: seed)
        let random = RandomSource(seed: seed ^ 0xD1B5_4A32_D192_ED03)
        switch kind {
        case .mlp:
            return try mlp(sampleShape: sampleShape, classCount: classCount, hidden: hidden, dropout: dropout,
                           rng: &rng, random: random)
        case .convnet:
            return try convnet(sampleShape: sampleShape, classCount: classCount, width: width, dropout: dropout,
                               rng: &rng, random: random)
        }
    }

    /// `make` for `dataset`'s sample shape and class count.
    public static func make(name: String, dataset: Dataset, seed: UInt64, hidden: [Int] = [256], dropout: Float = 0,
                            width: Int = 16) throws -> Network {
        try make(name: name, sampleShape: dataset.sampleShape, classCount: dataset.classCount, seed: seed,
                 hidden: hidden, dropout: dropout, width: width)
    }

    private static func mlp(sampleShape: [Int], classCount: Int, hidden: [Int], dropout: Float,
                            rng: inout Xoshiro256, random: RandomSource) throws -> Network {
        guard hidden.allSatisfy({ $0 > 0 }) else { throw ModelError("hidden layer sizes must be positive, got \(hidden)") }
        let inputSize = sampleShape.reduce(1, *)
        var layers: [Layer] = []
        // Linear reads [B, 1, 28, 28] as [B, 784] without a copy, so no Flatten layer is needed.
        var width = inputSize
        for (i, h) in hidden.enumerated() {
            layers.append(Linear(name: "fc\(i + 1)", inFeatures: width, outFeatures: h, rng: &rng))
            layers.append(ReLU())
            if dropout > 0 { layers.append(Dropout(p: dropout, random: random)) }
            width = h
        }
        layers.append(Linear(name: "head", inFeatures: width, outFeatures: classCount, rng: &rng))
        let sizes = ([inputSize] + hidden + [classCount]).map(String.init).joined(separator: "-")
        let summary = "mlp \(sizes)" + (dropout > 0 ? " dropout \(dropout)" : "")
        return Network(kind: "mlp", summary: summary, root: Sequential(layers), sampleShape: sampleShape,
                       classCount: classCount, random: random)
    }

    private static func convnet(sampleShape: [Int], classCount: Int, width: Int, dropout: Float,
                                rng: inout Xoshiro256, random: RandomSource) throws -> Network {
        guard sampleShape.count == 3 else {
            throw ModelError("convnet needs image samples [C, H, W], the dataset has samples of shape \(sampleShape): use the mlp model")
        }
        guard sampleShape[1] >= 2 && sampleShape[2] >= 2 else {
            throw ModelError("convnet needs images of at least 2x2 pixels, got \(sampleShape)")
        }
        guard width > 0 else { throw ModelError("convnet width must be positive, got \(width)") }
        let c = sampleShape[0]
        let workspace = ConvWorkspace()
        // Channel-last from the input on (`ActivationLayout`); the weights keep PyTorch's layout.
        let layout = ActivationLayout.channelsLast
        let stemConv = Conv2d(name: "stem.conv", inChannels: c, outChannels: width, kernel: 3, stride: 1, padding: 1,
                              bias: false, workspace: workspace, layout: layout, rng: &rng)
        let stemBN = BatchNorm2d(name: "stem.bn", channels: width, fusedReLU: true, layout: layout)
        stemBN.takeStatistics(from: stemConv)
        var layers: [Layer] = [
            ChannelsLastInput(),
            stemConv,
            stemBN,
            ResidualBlock(name: "stage1.block1", inChannels: width, outChannels: width, stride: 1,
                          workspace: workspace, layout: layout, rng: &rng),
            ResidualBlock(name: "stage2.block1", inChannels: width, outChannels: 2 * width, stride: 2,
                          workspace: workspace, layout: layout, rng: &rng),
            GlobalAvgPool2d(layout: layout),
        ]
        if dropout > 0 { layers.append(Dropout(p: dropout, random: random)) }
        layers.append(Linear(name: "head", inFeatures: 2 * width, outFeatures: classCount, rng: &rng))
        let shape = sampleShape.map(String.init).joined(separator: "x")
        let summary = "convnet \(shape) \(width)-\(2 * width) → \(classCount)" + (dropout > 0 ? " dropout \(dropout)" : "")
        return Network(kind: "convnet", summary: summary, root: Sequential(layers), sampleShape: sampleShape,
                       classCount: classCount, random: random, evalChunkSize: 128, layerThreaded: true)
    }
}
