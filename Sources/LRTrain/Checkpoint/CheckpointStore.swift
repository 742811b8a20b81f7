import Foundation
import LRTensor
import LROptim

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

    static func load(url: URL) throws -> (state: CheckpointState, tensors: [String: [Float]]) {
        let contents = try CheckpointArchive.read(from: url)
        do {
            let state = try JSONDecoder().decode(CheckpointState.self, from: contents.metadata)
            guard state.format == CheckpointState.format else {
                throw CheckpointError("\(url.path): checkpoint format \(state.format) is not supported (this lrtop reads format \(CheckpointState.format))")
            }
            return (state, contents.tensors)
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw CheckpointError("\(url.path): checkpoint metadata is unreadable (\(error)); use an earlier checkpoint")
        }
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
            emit(event: .checkpoint, text: label, message: entry.url.map { "step \(step) → \($0.path)" } ?? "step \(step) (in memory)")
            return entry
        } catch {
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
