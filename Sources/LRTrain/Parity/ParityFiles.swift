import Foundation
import LRModels
import LRTensor
import LRLog

/// `train --dump-batch-order FILE`: the exact sample order a run with these options trains on, so another
/// framework can train on the same batches (bench/parity.py does). JSON Lines:
///
///     {"format":"lrtop-batch-order/1","seed":0,"batch_size":128,"accum_steps":1,"steps_per_epoch":468,
///      "epochs":15,"train_samples":60000}
///     [33512, 1043, …]        one line per epoch: training-split indices in the order they are served;
///                             step s of the epoch uses entries s·B·A ..< (s+1)·B·A (A micro-batches of B)
///
/// The order is a pure function of (seed, epoch, split size): a fresh permutation per epoch, the last partial batch
/// dropped. Writing it needs the dataset (for its size) but trains nothing.
public enum BatchOrderFile {
    public static func write(config: TrainConfig, to path: String) throws {
        let loaded = try DataLoader.load(spec: config.data, normalize: false)
        let count = loaded.dataset.train.count
        let microPerEpoch = count / config.batchSize
        let stepsPerEpoch = microPerEpoch / config.accumSteps
        guard stepsPerEpoch > 0 else {
            throw TrainError("the training split (\(count) samples) holds fewer than one step of \(config.batchSize)x\(config.accumSteps) samples")
        }
        let planned = stepsPerEpoch * config.epochs
        let totalSteps = config.maxSteps.map { config.epochs > 0 ? min($0, planned) : $0 } ?? planned
        let epochs = (totalSteps + stepsPerEpoch - 1) / stepsPerEpoch
        let used = stepsPerEpoch * config.accumSteps * config.batchSize
        var text = "{\"format\":\"lrtop-batch-order/1\",\"seed\":\(config.seed),\"batch_size\":\(config.batchSize),"
            + "\"accum_steps\":\(config.accumSteps),\"steps_per_epoch\":\(stepsPerEpoch),\"epochs\":\(epochs),"
            + "\"train_samples\":\(count)}\n"
        for epoch in 0..<epochs {
            let order = Batcher.permutation(count: count, seed: config.seed, epoch: epoch)
            text += "[" + order[0..<used].map(String.init).joined(separator: ",") + "]\n"
        }
        do { try SafeFiles.writeFile(Array(text.utf8), to: URL(fileURLWithPath: path), what: "the batch order") } catch {
            throw TrainError(error.message)
        }
    }
}

/// `train --trace-params FILE`: after every optimizer step, the loss and every parameter's L2 norm (in Double),
/// as JSON Lines, for comparison with PyTorch step by step:
///
///     {"format":"lrtop-param-trace/1","names":["fc1.weight","fc1.bias",…]}
///     {"step":1,"loss":2.3061,"lrs":[0.001],"norms":[11.52,0.33,…]}
public final class ParameterTrace: @unchecked Sendable {
    private let handle: FileHandle
    private var wroteHeader = false

    public init(path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try SafeFiles.prepareFolder(url.deletingLastPathComponent(), what: "the folder of the parameter trace",
                                        instead: "choose another --trace-params path", sharedAllowed: true)
            handle = FileHandle(fileDescriptor: try SafeFiles.open(url, .truncate, what: "the parameter trace"),
                                closeOnDealloc: true)
        } catch {
            throw TrainError("cannot write the parameter trace: \(error.message)")
        }
    }

    public func record(_ step: StepRecord, _ parameters: [Parameter]) {
        // One write per step, unbuffered: the trace is complete however the run ends.
        var line = ""
        if !wroteHeader {
            let names = parameters.map { "\"\($0.name)\"" }.joined(separator: ",")
            line += "{\"format\":\"lrtop-param-trace/1\",\"names\":[\(names)]}\n"
            wroteHeader = true
        }
        let norms = parameters.map { "\($0.value.sumOfSquares.squareRoot())" }.joined(separator: ",")
        let lrs = step.lrs.map { "\($0)" }.joined(separator: ",")
        line += "{\"step\":\(step.step),\"loss\":\(step.loss),\"lrs\":[\(lrs)],\"norms\":[\(norms)]}\n"
        handle.write(Data(line.utf8))
    }

    deinit { try? handle.close() }
}
