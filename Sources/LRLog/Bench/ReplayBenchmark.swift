import Foundation

/// `lrtop bench --replay`: writes a synthetic run as an lrtop run log and as a TensorBoard event file
/// (one event per scalar, as PyTorch's SummaryWriter writes), then times loading each and reads the
/// process memory from /proc/self/status.
public enum ReplayBenchmark {
    /// Keys (seconds, MB = 2^20 bytes):
    /// `steps`, `jsonl_write_s`, `jsonl_mb`, `jsonl_load_s`, `jsonl_steps_per_s`, `jsonl_run_mb`,
    /// `jsonl_peak_rss_mb`, `tb_write_s`, `tb_mb`, `tb_load_s`, `tb_load_no_crc_s`, `tb_run_mb`,
    /// `tb_peak_rss_mb`, `crc32c_gb_per_s`, `baseline_rss_mb`, `rss_mb`, `peak_rss_mb`.
    /// Peak RSS per phase is exact where the kernel lets the peak be reset (/proc/self/clear_refs),
    /// else it is the process peak so far (`peak_reset` 1 or 0 says which).
    /// The files are deleted afterwards unless `keepFiles`.
    public static func run(steps: Int = 1_000_000, directory: URL, keepFiles: Bool = false) throws -> [String: Double] {
        var r: [String: Double] = ["steps": Double(steps)]
        try SafeFiles.prepareFolder(directory, what: "the benchmark's folder", instead: "choose another folder")
        let logURL = directory.appendingPathComponent("bench-run.jsonl")
        let tbURL = directory.appendingPathComponent("events.out.tfevents.0.bench")
        defer {
            if !keepFiles {
                try? FileManager.default.removeItem(at: logURL)
                try? FileManager.default.removeItem(at: tbURL)
            }
        }
        r["baseline_rss_mb"] = memory().rss

        var t = monotonicSeconds()
        try writeLog(steps: steps, to: logURL)
        r["jsonl_write_s"] = monotonicSeconds() - t
        r["jsonl_mb"] = fileMB(logURL)

        t = monotonicSeconds()
        try writeEvents(steps: steps, to: tbURL)
        r["tb_write_s"] = monotonicSeconds() - t
        r["tb_mb"] = fileMB(tbURL)

        let resettable = resetPeak()
        r["peak_reset"] = resettable ? 1 : 0
        do {
            t = monotonicSeconds()
            let run = try RunLogReader.readRun(at: logURL)
            let elapsed = monotonicSeconds() - t
            r["jsonl_load_s"] = elapsed
            r["jsonl_steps_per_s"] = Double(run.steps.count) / elapsed
            r["jsonl_run_mb"] = Double(run.byteCount) / 1048576
            r["jsonl_peak_rss_mb"] = memory().peak
            precondition(run.steps.count == steps, "benchmark log read back \(run.steps.count) of \(steps) steps")
        }
        _ = resetPeak()
        do {
            t = monotonicSeconds()
            let run = try TensorBoardReader.readRun(files: [tbURL], name: "bench", source: tbURL.path)
            r["tb_load_s"] = monotonicSeconds() - t
            r["tb_run_mb"] = Double(run.byteCount) / 1048576
            r["tb_peak_rss_mb"] = memory().peak
            precondition(run.steps.count == steps, "benchmark event file read back \(run.steps.count) of \(steps) steps")
        }
        do {
            t = monotonicSeconds()
            _ = try TensorBoardReader.read(at: tbURL, verifyCRC: false)
            r["tb_load_no_crc_s"] = monotonicSeconds() - t
        }
        do {
            let bytes = [UInt8](repeating: 0x5A, count: 64 << 20)
            t = monotonicSeconds()
            let crc = bytes.withUnsafeBytes { CRC32C.checksum($0.baseAddress!, $0.count) }
            r["crc32c_gb_per_s"] = Double(bytes.count) / (monotonicSeconds() - t) / 1e9
            if crc == 0 { r["crc32c_gb_per_s"] = 0 }
        }
        let m = memory()
        r["rss_mb"] = m.rss
        r["peak_rss_mb"] = m.peak
        return r
    }

    /// A plausible run: cosine LR with warmup, a decaying noisy loss (Float values, as a trainer computes
    /// them), gradient norm, throughput and wall clock with jitter; an eval every 1000 steps.
    static func writeLog(steps: Int, to url: URL) throws {
        try writeMetricLog(steps: steps, metrics: 0, to: url)
    }

    /// The names of the metric benchmark's metrics: a realistic mix (accuracy, perplexity, per-block gradient norms,
    /// loss scale, data-loader wait, the GPU's reserved metrics), in four groups. `count` of them (at most 20).
    public static func metricNames(_ count: Int) -> [String] {
        Array(benchMetrics.prefix(max(0, min(count, benchMetrics.count))).map(\.name))
    }

    /// Each metric's value at the start and the end of the run (in between an exponential approach) and its noise.
    static let benchMetrics: [(name: String, start: Double, end: Double, noise: Double)] = [
        ("train/acc", 0.1, 0.92, 0.02), ("train/ppl", 300, 18, 2), ("train/tokens_per_sec", 52_000, 52_000, 3_000),
        ("train/loss_scale", 65_536, 65_536, 0), ("train/data_wait_ms", 2.5, 2.5, 1.5), ("train/update_ratio", 3e-3, 2e-4, 1e-4),
        ("train/weight_norm", 80, 140, 0.5), ("train/entropy", 2.3, 0.4, 0.05), ("grad/embed", 1.2, 0.3, 0.1),
        ("grad/attn", 2.0, 0.5, 0.2), ("grad/mlp", 1.6, 0.4, 0.15), ("grad/head", 0.9, 0.2, 0.05),
        ("grad/clip_frac", 0.4, 0.0, 0.02), ("val/acc_running", 0.1, 0.9, 0.01), ("val/ppl_running", 320, 20, 1),
        ("val/f1_running", 0.05, 0.88, 0.01), (SystemMetrics.gpuMemPeak, 3.1e10, 3.4e10, 1e8),
        (SystemMetrics.gpuMemReserved, 3.6e10, 3.8e10, 1e8), (SystemMetrics.gpuUtil, 88, 91, 4),
        ("system/cpu_percent", 115, 115, 10),
    ]

    /// `writeLog`'s run with `metrics` float32 values in each step record, as the bridge writes tensor metrics
    /// (`run.step(loss, acc=..., ...)`): the metric benchmark's run (wandb#12527's case: 20 scalars every step).
    public static func writeMetricLog(steps: Int, metrics: Int, to url: URL) throws {
        let writer = try RunLogWriter(url: url)
        let names = metricNames(metrics)
        try writer.write(.header(RunHeader(lrtopVersion: "bench", config: ["optimizer": "adamw", "lr": "0.001"], seed: 1,
                                           startTime: "2025-01-01T00:00:00Z", groups: ["all"], stepsPerEpoch: 1000,
                                           totalSteps: steps)))
        var rng = SplitMix(seed: 42)
        var record = StepRecord(step: 0, epoch: 0, lrs: [0], loss: 0, gradNorm: 0, samplesPerSec: 0, wallTime: 0,
                                metrics: names.map { MetricValue($0, 0) })
        var wall = 0.0
        for i in 1...steps {
            let v = values(i, steps, &rng)
            wall += 0.001 + 0.0001 * rng.unit()
            record.step = i
            record.epoch = (i - 1) / 1000
            record.lrs[0] = v.lr
            record.loss = v.loss
            record.gradNorm = v.gradNorm
            record.samplesPerSec = v.sps
            record.wallTime = wall
            let progress = Double(i) / Double(steps)
            let approach = 1 - exp(-5 * progress)
            for k in record.metrics.indices {
                let m = benchMetrics[k]
                record.metrics[k].value = Double(Float(m.start + (m.end - m.start) * approach + m.noise * (rng.unit() - 0.5)))
            }
            try writer.write(step: record)
            if i % 1000 == 0 {
                try writer.write(.eval(EvalRecord(step: i, epoch: record.epoch, loss: v.loss * 1.1,
                                                  accuracy: Double(Float(0.5 + 0.4 * progress)), wallTime: wall)))
            }
        }
        try writer.write(end: EndRecord(reason: .completed, step: steps, epoch: (steps - 1) / 1000, finalLoss: nil,
                                        bestEvalLoss: nil, bestAccuracy: nil, finalAccuracy: nil, wallTime: wall))
        try writer.close()
    }

    static func writeEvents(steps: Int, to url: URL) throws {
        let start = 1_735_689_600.0
        let writer = try TensorBoardWriter(url: url, wallTime: start)
        var rng = SplitMix(seed: 42)
        var wall = start
        for i in 1...steps {
            let v = values(i, steps, &rng)
            wall += 0.001 + 0.0001 * rng.unit()
            try writer.addScalar(tag: "train/loss", value: Float(v.loss), step: i, wallTime: wall)
            try writer.addScalar(tag: "train/lr", value: Float(v.lr), step: i, wallTime: wall)
            try writer.addScalar(tag: "train/grad_norm", value: Float(v.gradNorm), step: i, wallTime: wall)
            try writer.addScalar(tag: "train/samples_per_sec", value: Float(v.sps), step: i, wallTime: wall)
        }
        try writer.close()
    }

    private static func values(_ i: Int, _ steps: Int, _ rng: inout SplitMix) -> (lr: Double, loss: Double, gradNorm: Double, sps: Double) {
        let warmup = max(1, steps / 100)
        let progress = Double(i) / Double(steps)
        let lr = i < warmup ? 1e-3 * Double(i) / Double(warmup) : 1e-3 * 0.5 * (1 + cos(Double.pi * progress))
        let loss = Double(Float(2.5 * exp(-3 * progress) + 0.1 + 0.05 * rng.unit()))
        let gradNorm = Double(Float(0.5 + rng.unit()))
        let sps = 12_000 + 500 * rng.unit()
        return (lr, loss, gradNorm, sps)
    }

    public static func fileMB(_ url: URL) -> Double {
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        return Double(size) / 1048576
    }

    /// VmRSS and VmHWM of this process, in MB.
    public static func memory() -> (rss: Double, peak: Double) {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (.nan, .nan) }
        func field(_ name: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return .nan }
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
            return kb / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs).
    @discardableResult
    public static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return Glibc.write(fd, "5", 1) == 1
    }
}

/// A small deterministic generator for synthetic data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
