import Foundation

/// The memory a run will need, estimated from its config before anything is allocated, so that a size typed by
/// mistake (`--hidden 100000000`, `--batch-size 60000` on the convnet) is refused with the figure instead of
/// failing an allocation, overflowing, or waking the kernel's OOM killer.
///
/// The figures are upper estimates (float32 everywhere): parameters with their gradient, up to three optimizer
/// slots and the checkpoints kept in memory; activations of a micro-batch forward and backward; one evaluation
/// chunk. Convolutions count their im2col buffers.
public struct MemoryEstimate: Sendable, Equatable {
    public var parameterBytes: Int
    public var batchBytes: Int
    public var evalBytes: Int
    public var total: Int { parameterBytes + batchBytes + evalBytes }

    /// nil when a figure does not even fit in 64 bits.
    public static func of(_ config: TrainConfig, sampleShape: [Int], classCount: Int) -> MemoryEstimate? {
        func mul(_ xs: Int?...) -> Int? {
            var r = 1
            for x in xs {
                guard let x else { return nil }
                let (p, o) = r.multipliedReportingOverflow(by: x)
                if o { return nil }
                r = p
            }
            return r
        }
        func add(_ xs: Int?...) -> Int? {
            var r = 0
            for x in xs {
                guard let x else { return nil }
                let (s, o) = r.addingReportingOverflow(x)
                if o { return nil }
                r = s
            }
            return r
        }
        guard let inputSize = sampleShape.reduce(Optional(1), { mul($0, $1) }) else { return nil }
        var params: Int?
        var activationsPerSample: Int?
        var evalChunk = 1000
        if config.model == .convnet, sampleShape.count == 3 {
            let (c, hw) = (sampleShape[0], sampleShape[1] * sampleShape[2])
            let width = 16
            params = add(mul(9, c, width), mul(2 * 9, width, width), mul(9, width, 2 * width), mul(9, 2 * width, 2 * width),
                         mul(width, 2 * width), mul(2 * width + 1, classCount), 12 * width)
            // Per sample, forward and backward: activations, their gradients and the im2col buffers (9 columns
            // per input channel) of each stage; stage 2 runs at a quarter of the pixels with twice the channels.
            // Calibrated on Fashion-MNIST: 1.7 MB per sample measured (max RSS at batch 256 and 1024), 1.8 estimated.
            activationsPerSample = add(mul(hw, add(mul(24, width), mul(9, c))), mul(hw / 4 + 1, 48, width))
            evalChunk = 128
        } else {
            var width = inputSize
            var p: Int? = 0
            var acts: Int? = inputSize
            for h in config.hidden + [classCount] {
                p = add(p, mul(width, h), h)
                acts = add(acts, mul(4, h))
                width = h
            }
            params = p
            activationsPerSample = acts.flatMap { mul(2, $0) }
        }
        guard let params, let activationsPerSample else { return nil }
        // value, grad, slots, ring, checkpoint encoding (`--checkpoint-keep` is the user's, or a checkpoint's)
        let copies = add(1 + 1 + 3 + 4, mul(3, config.checkpointKeep))
        guard let pb = mul(params, copies, 4), let bb = mul(activationsPerSample, config.batchSize, 4),
              let eb = mul(activationsPerSample / 2, evalChunk, 4), add(pb, bb, eb) != nil else { return nil }
        return MemoryEstimate(parameterBytes: pb, batchBytes: bb, evalBytes: eb)
    }

    /// The memory this process may use: the machine's, or the cgroup's limit where one is set.
    public static var available: Int {
        var limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let v = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), v > 0 {
                limit = min(limit, v)
            }
        }
        return limit
    }

    /// Throws when the run cannot fit, naming the figures and the options that set them.
    public static func check(_ config: TrainConfig, sampleShape: [Int], classCount: Int,
                             available: Int = MemoryEstimate.available) throws(TrainError) {
        let sizes = config.model == .convnet ? "--batch-size \(config.batchSize)"
            : "--hidden \(config.hidden.map(String.init).joined(separator: ",")) and --batch-size \(config.batchSize)"
        guard let e = of(config, sampleShape: sampleShape, classCount: classCount) else {
            throw TrainError("\(sizes) would need more memory than can be counted: use smaller sizes")
        }
        guard e.total <= available else {
            throw TrainError("\(sizes) would need about \(bytes(e.total)) (model and optimizer \(bytes(e.parameterBytes)), "
                + "a batch \(bytes(e.batchBytes)), evaluation \(bytes(e.evalBytes))) and this machine has \(bytes(available)): "
                + "use smaller sizes")
        }
    }

    static func bytes(_ n: Int) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var v = Double(n), i = 0
        while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
        return i == 0 ? "\(n) bytes" : String(format: v < 10 ? "%.1f " : "%.0f ", v) + units[i]
    }
}
