import Foundation
import LRTensor
import LROptim
import LRLog

/// Everything but the tensors of a checkpoint; the tensors travel beside it in the archive.
struct CheckpointState: Codable {
    static let format = 1
    var format = CheckpointState.format
    var label: String
    var createdAt: String
    var config: TrainConfig
    var step: Int
    var wallTime: Double
    var paused: Bool
    var lrControl: LRControl.State
    var optimizerScalars: [String: [String: Double]]
    var groupLRs: [Double]
    var groupInitialLRs: [Double]
    var groupHypers: [[String: Double]]
    var dropoutRNG: Xoshiro256?
    var guardState: DivergenceGuard
    var lastLoss: Double?
    var bestEvalLoss: Double?
    var bestAccuracy: Double?
}

extension CheckpointState {
    /// Checks what the trainer would otherwise trust in a checkpoint's metadata (its checksum only says the file is
    /// whole, not that lrtop wrote it): counts, steps and numbers in range, lists the same length, so a crafted file
    /// is refused in one line instead of trapping later (a negative step, a warmup counter at Int.max).
    func validate(path: String) throws(CheckpointError) {
        func bad(_ what: String) -> CheckpointError {
            CheckpointError("\(path): the checkpoint's \(what); the file is corrupt or was not written by lrtop: use an earlier checkpoint")
        }
        func rates(_ values: [Double]) -> Bool { values.allSatisfy { $0.isFinite && $0 >= 0 } }
        let groups = groupLRs.count
        guard step >= 0 else { throw bad("step is \(step)") }
        guard wallTime.isFinite && wallTime >= 0 else { throw bad("wall time is \(wallTime)") }
        guard groups >= 1, groupInitialLRs.count == groups, groupHypers.count == groups else {
            throw bad("param groups disagree (\(groups) LRs, \(groupInitialLRs.count) base LRs, \(groupHypers.count) hyperparameter sets)")
        }
        guard rates(groupLRs), rates(groupInitialLRs) else { throw bad("LRs are not finite non-negative numbers") }
        guard groupHypers.allSatisfy({ $0.values.allSatisfy(\.isFinite) }) else { throw bad("hyperparameters are not finite") }
        let c = lrControl
        guard c.held.count == groups, c.overridden.count == groups, c.shadowLRs.count == groups,
              c.shadowInitialLRs.count == groups else { throw bad("LR control lists do not match its \(groups) param groups") }
        guard rates(c.shadowLRs), rates(c.shadowInitialLRs) else { throw bad("scheduled LRs are not finite non-negative numbers") }
        // A warmup cannot have taken more steps than the run has; the counters then never near Int.max.
        guard (0...(Int.max / 2)).contains(c.warmupTotal), (0...min(c.warmupTotal, step)).contains(c.warmupDone) else {
            throw bad("warmup counters are \(c.warmupDone) of \(c.warmupTotal)")
        }
        guard c.context.totalSteps >= 1, c.context.stepsPerEpoch >= 1 else { throw bad("schedule length is out of range") }
        guard guardState.isValid(atStep: step) else { throw bad("divergence guard state is out of range") }
        guard optimizerScalars.values.allSatisfy({ $0.values.allSatisfy { $0.isFinite && $0 >= 0 } }) else {
            throw bad("optimizer step counts are not finite non-negative numbers")
        }
    }
}

extension CheckpointArchive.Contents {
    /// Refuses weights (or optimizer state) holding NaN or an infinity, naming the tensor, as `--init` does for a
    /// safetensors file.
    public func checkFinite(path: String) throws(CheckpointError) {
        for name in tensors.keys.sorted() {
            guard let values = tensors[name], let i = values.firstIndex(where: { !$0.isFinite }) else { continue }
            throw CheckpointError("\(path): tensor '\(TerminalText.excerpt(name))' holds \(values[i]) at index \(i): "
                + "the checkpoint's weights are not finite (saved from a diverged run?); use an earlier checkpoint")
        }
    }
}

/// A bounded ring of recent checkpoints in memory, mirrored on disk under the run folder.
struct CheckpointStore {
    struct Entry {
        var state: CheckpointState
        var tensors: [String: [Float]]
        var url: URL?
    }
    let directory: URL?
    let keep: Int
    private(set) var ring: [Entry] = []

    init(directory: URL?, keep: Int) { self.directory = directory; self.keep = keep }

    var latest: Entry? { ring.last }
    var count: Int { ring.count }

    /// Checkpoint files this run wrote that are still on disk.
    var filesOnDisk: Int { written.count }
    private var written: [URL] = []

    /// Adds a checkpoint; writes it to disk atomically when the run has a folder, as `STEM.ckpt`, or `STEM-2.ckpt`,
    /// `STEM-3.ckpt` ... when that name is taken (several checkpoints at one step, a resumed run writing into its
    /// old folder): every checkpoint gets its own file and none is overwritten. Automatic ones beyond `keep` are
    /// deleted from disk too; manual and final ones stay.
    mutating func add(_ entry: Entry, fileStem: String?) throws -> Entry {
        var entry = entry
        if let directory, let fileStem {
            let url = Self.freeName(in: directory, stem: fileStem)
            let meta = try JSONEncoder().encode(entry.state)
            try CheckpointArchive.write(.init(metadata: meta, tensors: entry.tensors), to: url)
            entry.url = url
            written.append(url)
        }
        ring.append(entry)
        if ring.count > keep {
            let old = ring.removeFirst()
            if let url = old.url, old.state.label == "auto" || old.state.label.hasPrefix("before") {
                try? FileManager.default.removeItem(at: url)
                written.removeAll { $0 == url }
            }
        }
        return entry
    }

    static func freeName(in directory: URL, stem: String) -> URL {
        var url = directory.appendingPathComponent("\(stem).ckpt")
        var n = 2
        while FileManager.default.fileExists(atPath: url.path) {
            url = directory.appendingPathComponent("\(stem)-\(n).ckpt")
            n += 1
        }
        return url
    }

    /// Reads a checkpoint for `--resume` or `--init`. Its state is checked as input from outside (`validate`), and
    /// weights that are not finite are refused (a diverged run's weights would "train" on behind a ReLU).
    static func load(url: URL) throws -> (state: CheckpointState, tensors: [String: [Float]]) {
        let contents = try CheckpointArchive.read(from: url)
        let state: CheckpointState
        do {
            state = try JSONDecoder().decode(CheckpointState.self, from: contents.metadata)
        } catch {
            throw CheckpointError("\(url.path): checkpoint metadata is unreadable (\(TerminalText.excerpt("\(error)", limit: 200))); use an earlier checkpoint")
        }
        guard state.format == CheckpointState.format else {
            throw CheckpointError("\(url.path): checkpoint format \(state.format) is not supported (this lrtop reads format \(CheckpointState.format))")
        }
        try state.validate(path: url.path)
        try contents.checkFinite(path: url.path)
        return (state, contents.tensors)
    }
}

extension Trainer {
    /// Snapshots model, optimizer, scheduler, data position and control state; keeps it in the ring and on disk.
    @discardableResult
    func saveCheckpoint(label: String, name: String? = nil) -> CheckpointStore.Entry? {
        let (state, tensors) = snapshot(label: label)
        if let bad = tensors.keys.sorted().first(where: { !tensors[$0]!.allSatisfy(\.isFinite) }) {
            emit(event: .error, text: "checkpoint", message: "checkpoint at step \(step) not written: '\(bad)' holds "
                 + "non-finite values (the run diverged); earlier checkpoints are intact")
            return nil
        }
        let stem = runDirectory == nil ? nil : (name ?? String(format: "step-%08d", step))
        do {
            let entry = try checkpoints.add(.init(state: state, tensors: tensors, url: nil), fileStem: stem)
            checkpointIsCurrent = true
            emit(event: .checkpoint, text: label, message: entry.url.map { "step \(step) → \($0.path)" } ?? "step \(step) (in memory)")
            return entry
        } catch {
            if let e = error as? CheckpointError, SafeFiles.isOutOfSpace(e.code) { outOfSpace = outOfSpace ?? e.description }
            emit(event: .error, text: "checkpoint", message: "checkpoint at step \(step) failed: \(error); the run continues")
            return nil
        }
    }

    func snapshot(label: String) -> (CheckpointState, [String: [Float]]) {
        var tensors: [String: [Float]] = [:]
        for p in network.parameters { tensors["param/\(p.name)"] = p.value.storage }
        for b in network.buffers { tensors["buffer/\(b.name)"] = b.tensor.storage }
        let opt = optimizer.stateSnapshot()
        for (param, slots) in opt.tensors {
            for (slot, values) in slots { tensors["optim/\(param)/\(slot)"] = values }
        }
        let state = CheckpointState(
            label: label, createdAt: ISO8601DateFormatter().string(from: Date()), config: config, step: step,
            wallTime: wallTime, paused: paused, lrControl: lrControl.snapshot(), optimizerScalars: opt.scalars,
            groupLRs: opt.groupLRs, groupInitialLRs: opt.groupInitialLRs, groupHypers: opt.groupHypers,
            dropoutRNG: network.dropoutRNG, guardState: guardState, lastLoss: lastLoss,
            bestEvalLoss: bestEvalLoss, bestAccuracy: bestAccuracy)
        return (state, tensors)
    }

    /// Puts the whole run back to a checkpoint: weights, optimizer, schedule, data position, step, control.
    func restore(_ state: CheckpointState, tensors: [String: [Float]]) throws {
        checkpointIsCurrent = false
        try loadWeights(tensors, from: "checkpoint at step \(state.step)")
        var optTensors: [String: [String: [Float]]] = [:]
        for (key, values) in tensors where key.hasPrefix("optim/") {
            let rest = key.dropFirst("optim/".count)
            guard let slash = rest.lastIndex(of: "/") else { continue }
            optTensors[String(rest[..<slash]), default: [:]][String(rest[rest.index(after: slash)...])] = values
        }
        try optimizer.restore(OptimizerState(tensors: optTensors, scalars: state.optimizerScalars,
                                             groupLRs: state.groupLRs, groupInitialLRs: state.groupInitialLRs,
                                             groupHypers: state.groupHypers))
        lrControl = try LRControl.restored(state.lrControl, optimizer: optimizer)
        if let rng = state.dropoutRNG { network.dropoutRNG = rng }
        guardState = state.guardState
        step = state.step
        lastLoss = state.lastLoss
        bestEvalLoss = state.bestEvalLoss
        bestAccuracy = state.bestAccuracy
        if options.resumeCheckpoint != nil && wallTimeOffset == 0 && step == state.step {
            wallTimeOffset = state.wallTime
        }
    }

    /// Copies parameters and buffers by name, checking shapes, so a checkpoint from another model says so.
    func loadWeights(_ tensors: [String: [Float]], from source: String) throws {
        for p in network.parameters {
            guard let values = tensors["param/\(p.name)"] else {
                throw CheckpointError("\(source): has no parameter '\(p.name)': was it saved from a \(config.model) model with the same sizes?")
            }
            guard values.count == p.value.count else {
                throw CheckpointError("\(source): parameter '\(p.name)' has \(values.count) values, the model needs \(p.value.count): check --model and --hidden")
            }
            p.value.storage = values
        }
        for b in network.buffers {
            if let values = tensors["buffer/\(b.name)"], values.count == b.tensor.count { b.tensor.storage = values }
        }
    }
}
