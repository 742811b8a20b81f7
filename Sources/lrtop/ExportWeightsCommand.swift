import ArgumentParser
import Foundation
import LRModels
import LRTrain
import LRLog

/// `lrtop export-weights`: a model's weights as a safetensors file named like the PyTorch twin's `state_dict()`.
struct ExportWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-weights",
        abstract: "Write a run's weights as a safetensors file PyTorch loads.",
        discussion: """
        lrtop export-weights runs/X OUT.safetensors             (the run's final checkpoint, else its latest)
        lrtop export-weights runs/X/checkpoints/step-00001000.ckpt OUT.safetensors
        lrtop export-weights --initial --model convnet --seed 3 OUT.safetensors   (what a fresh run starts from)
        In PyTorch: model.load_state_dict(safetensors.torch.load_file("OUT.safetensors")) with the twin model of \
        bench/twins.py, twins.make("mlp" or "convnet", ...) (the same names: the mlp's fc1.weight … head.weight, \
        the convnet's stem.conv.weight, stem.bn.running_mean … head.bias, num_batches_tracked included). Train on \
        from a PyTorch state_dict with 'lrtop train --init FILE.safetensors'.
        """)

    @Argument(help: "A checkpoint (.ckpt), a run folder or its run.jsonl, or a .safetensors file (checked against --model and rewritten), then the output file; only the output with --initial.")
    var paths: [String] = []
    @Flag(help: "Export the initial weights of a fresh run with --model, --hidden, --seed and --data instead of a checkpoint's.")
    var initial = false
    @Option(help: "With --initial or a .safetensors source: mlp or convnet.", transform: { try ModelKind(name: $0) })
    var model = ModelKind.mlp
    @Option(help: "With --initial: MLP hidden sizes, comma separated.") var hidden = "256"
    @Option(help: "With --initial: the run's seed.") var seed: UInt64 = 0
    @Option(help: "With --initial: the dataset (its sample shape and class count size the model).") var data: String?

    func validate() throws {
        if initial && paths.count != 1 {
            throw ValidationError("with --initial give only the output file: lrtop export-weights --initial --model mlp OUT.safetensors")
        }
        if !initial && paths.count != 2 {
            throw ValidationError("give a checkpoint or run folder and an output file: lrtop export-weights runs/X OUT.safetensors (or --initial OUT.safetensors)")
        }
    }

    func run() throws {
        let out = paths.last!
        let network: Network
        var metadata: [String: String] = [:]
        if initial {
            let sizes = hidden.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.count == hidden.split(separator: ",").count else {
                try fail("invalid --hidden '\(hidden)': expected sizes like 256 or 512,256")
            }
            do {
                let loaded = try DataLoader.load(spec: data)
                network = try ModelFactory.make(name: model.rawValue, dataset: loaded.dataset, seed: seed, hidden: sizes)
            } catch { try fail("\(error)") }
            metadata["lrtop_source"] = "initial weights, seed \(seed)"
        } else if paths[0].lowercased().hasSuffix(".safetensors") {
            // A PyTorch file through the model: checked against it (names, shapes, finite values) and written as
            // lrtop writes weights (F32; counters I64).
            do {
                let file = try Safetensors.read(contentsOf: URL(fileURLWithPath: paths[0]))
                network = try Self.network(fitting: file, model: model)
                try network.load(file)
            } catch { try fail("\(error)") }
            metadata["lrtop_source"] = paths[0]
        } else {
            let source = try Self.checkpointURL(for: paths[0])
            do {
                let (net, step) = try Self.network(fromCheckpoint: source)
                network = net
                metadata["lrtop_source"] = source.path
                metadata["lrtop_step"] = "\(step)"
            } catch { try fail("\(error)") }
        }
        metadata["lrtop_model"] = network.summary
        let bytes = network.safetensorsBytes(metadata: metadata)
        do { try SafeFiles.writeFile(bytes, to: URL(fileURLWithPath: out), what: "the weights") } catch {
            try fail(error.message)
        }
        printOut("lrtop: wrote \(out): \(network.summary), \(network.parameterCount) parameters, \(bytes.count) bytes")
    }

    /// A checkpoint file as given; for a run folder (or its log) the final checkpoint, else the latest one.
    static func checkpointURL(for path: String) throws -> URL {
        var url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        if let problem = FileProblem.statProblem(path, what: "file or folder") {
            try fail(problem.code == ENOENT ? "\(path): no such file or folder — give a checkpoint (.ckpt) or a run folder" : problem.message)
        }
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            try fail("\(path): no such file or folder — give a checkpoint (.ckpt) or a run folder")
        }
        if !isDir.boolValue {
            guard url.pathExtension == "jsonl" else { return url }
            url.deleteLastPathComponent()
        }
        let folder = url.appendingPathComponent("checkpoints")
        let final = folder.appendingPathComponent("final.ckpt")
        if FileManager.default.fileExists(atPath: final.path) { return final }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".ckpt") }.sorted()
        guard let latest = names.last else {
            try fail("\(url.path): no checkpoints in \(folder.path) — was the run started with a run folder?")
        }
        return folder.appendingPathComponent(latest)
    }

    /// The model whose state_dict `file` holds, sized from its tensors' shapes (the twin of `model`).
    static func network(fitting file: Safetensors, model: ModelKind) throws -> Network {
        func shape(_ name: String) throws -> [Int] {
            guard let e = file[name] else {
                throw SafetensorsError("\(file.source): no tensor '\(name)': is it the state_dict of a \(model) twin? (--model)")
            }
            return e.shape
        }
        let classes = try shape("head.bias").first ?? 0
        // The sizes read from the file must chain as the model's layers do before a model is made of them, so every
        // tensor of that model is one the file holds: a crafted shape cannot size a model the file does not back.
        func expect(_ name: String, _ wanted: [Int]) throws {
            let got = try shape(name)
            guard got == wanted else {
                throw SafetensorsError("\(file.source): tensor '\(name)' has shape \(got), a \(model) twin needs \(wanted) (check --model)")
            }
        }
        switch model {
        case .mlp:
            var hidden: [Int] = []
            while let w = file["fc\(hidden.count + 1).weight"], w.shape.count == 2 { hidden.append(w.shape[0]) }
            let inputs = try shape("fc1.weight")
            guard inputs.count == 2 else { throw SafetensorsError("\(file.source): tensor 'fc1.weight' has shape \(inputs), expected [hidden, inputs]") }
            for (i, h) in hidden.enumerated() { try expect("fc\(i + 1).weight", [h, i == 0 ? inputs[1] : hidden[i - 1]]) }
            try expect("head.weight", [classes, hidden.last ?? inputs[1]])
            return try ModelFactory.make(.mlp, sampleShape: [inputs[1]], classCount: classes, seed: 0, hidden: hidden)
        case .convnet:
            let stem = try shape("stem.conv.weight")
            guard stem.count == 4 else { throw SafetensorsError("\(file.source): tensor 'stem.conv.weight' has shape \(stem), expected [width, channels, 3, 3]") }
            let (wide, overflow) = stem[0].multipliedReportingOverflow(by: 2)
            guard !overflow else { throw SafetensorsError("\(file.source): tensor 'stem.conv.weight' has shape \(stem): too wide") }
            try expect("stage2.block1.conv2.weight", [wide, wide, 3, 3])
            try expect("head.weight", [classes, wide])
            return try ModelFactory.make(.convnet, sampleShape: [stem[1], 28, 28], classCount: classes, seed: 0, width: stem[0])
        }
    }

    private struct CheckpointSummary: Decodable {
        var config: TrainConfig
        var step: Int
    }

    /// The model a checkpoint holds. Its shapes follow from the architecture and the tensors alone (input size
    /// from the first layer, classes from the head), so the dataset need not be on this machine.
    static func network(fromCheckpoint url: URL) throws -> (Network, Int) {
        let contents = try CheckpointArchive.read(from: url)
        let summary: CheckpointSummary
        do { summary = try JSONDecoder().decode(CheckpointSummary.self, from: contents.metadata) } catch {
            throw CLIError("\(url.path): checkpoint metadata is unreadable (\(TerminalText.excerpt("\(error)", limit: 200)))")
        }
        try contents.checkFinite(path: url.path)
        let config = summary.config, tensors = contents.tensors
        func count(_ name: String) throws -> Int {
            guard let values = tensors["param/\(name)"] else {
                throw CLIError("\(url.path): the checkpoint has no parameter '\(name)' for its model \(config.model)")
            }
            return values.count
        }
        let classes = try count("head.bias")
        let sampleShape: [Int]
        switch config.model {
        case .mlp:
            sampleShape = [try count("fc1.weight") / max(1, config.hidden.first ?? 1)]
            // The sizes in the metadata must be those of the tensors in the file before a model is made of them:
            // a crafted `hidden` would otherwise allocate a model the file does not hold.
            var inputs = sampleShape[0]
            for (i, h) in config.hidden.enumerated() {
                let have = try count("fc\(i + 1).weight"), (need, overflow) = h.multipliedReportingOverflow(by: inputs)
                guard h > 0, !overflow, need == have else {
                    throw CLIError("\(url.path): parameter 'fc\(i + 1).weight' holds \(have) values, which does not fit the "
                        + "hidden sizes \(config.hidden) in its metadata: the checkpoint is corrupt")
                }
                inputs = h
            }
        case .convnet: sampleShape = [max(1, try count("stem.conv.weight") / (16 * 9)), 28, 28]
        }
        let network = try ModelFactory.make(config.model, sampleShape: sampleShape, classCount: classes,
                                            seed: config.seed, hidden: config.hidden, dropout: Float(config.dropout))
        for p in network.parameters {
            let values = tensors["param/\(p.name)"] ?? []
            guard values.count == p.value.count else {
                throw CLIError("\(url.path): parameter '\(p.name)' holds \(values.count) values, model \(network.summary) needs \(p.shape)")
            }
            p.value.storage = values
        }
        // Checkpoints older than the BatchNorm counters lack them; those stay 0.
        for b in network.buffers {
            if let values = tensors["buffer/\(b.name)"], values.count == b.tensor.count { b.tensor.storage = values }
        }
        return (network, summary.step)
    }
}
