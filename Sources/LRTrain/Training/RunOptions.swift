import Foundation
import LRLog
import LRModels
import LRTensor
import LRCommand

/// How a run is hosted: where it writes, what drives it, where it starts from.
public struct RunOptions: Sendable {
    /// The run's folder (log and checkpoints). Nil: a new folder under `./runs/` named by date and time.
    public var runDirectory: URL? = nil
    /// Write the log here instead of `<run dir>/run.jsonl`.
    public var logPath: URL? = nil
    /// A parsed `--commands` script.
    public var script: CommandScript? = nil
    /// Start from this checkpoint's weights with a fresh optimizer and schedule (fine-tuning).
    public var initCheckpoint: URL? = nil
    /// Continue the run saved in this checkpoint, bit for bit.
    public var resumeCheckpoint: URL? = nil
    /// With `resumeCheckpoint`: the config keys (`TrainConfig.flattened` names) the command line set; those in
    /// `TrainConfig.resumableKeys` apply, others must match the checkpoint.
    public var resumeChanges: Set<String> = []
    /// Overwrite a run folder's existing log and checkpoints (`--force`).
    public var force = false
    /// Nobody can press a key: a pause with no scripted command left to resume it ends the run.
    public var headless = true
    /// Publish records to the channel for a UI to drain.
    public var publishRecords = false
    /// BLAS threads (nil: leave OpenBLAS's choice).
    public var threads: Int? = nil
    public var lrtopVersion = "dev"
    /// Write a run log and checkpoints at all (benchmarks turn it off to measure the step alone).
    public var writeFiles = true
    /// Evaluate at epoch ends and every `evalEvery` steps (benchmarks turn it off).
    public var evaluate = true
    /// Called on the trainer thread with every record, after it is logged (headless progress lines).
    public var observer: (@Sendable (RunRecord) -> Void)? = nil
    /// Called on the trainer thread after every optimizer step with its record and the model's parameters
    /// (`train --trace-params`: bench/parity.py compares every parameter's norm with PyTorch's).
    public var parameterObserver: (@Sendable (StepRecord, [Parameter]) -> Void)? = nil
    /// Marks the run's log as a sub-run of another (a sweep trial, a branch): written in its header.
    public var subrun: SubRun? = nil
    /// The dataset, already loaded with the config's `data` and `normalize` (a sweep loads it once for all trials).
    public var preloadedData: LoadedData? = nil
    /// `lrtop find-lr`: an `lr X` for every group before the first step is the run's base LR, the schedule (its
    /// warmup included) planned from it as `--lr X` would, instead of an override the warmup would multiply.
    public var lrBeforeFirstStepIsBase = false
    /// How fast the run may go (`--pace`, the `pace` command changes it live).
    public var pace: PaceSetting = .off
    /// The control socket serving this run (`lrtop attach`): named in the log's header.
    public var socketPath: String? = nil
    /// Where the log writer copies each line it writes (the control socket pushes them to viewers).
    public var logLines: LogLineRing? = nil
    public init() {}
}

/// A run's pace: full speed, at most N steps a second, or the pace that makes the run last at least so many
/// seconds (the UI's default, so that a first run can be watched and steered before it is over).
public enum PaceSetting: Sendable, Equatable {
    case off
    case stepsPerSecond(Double)
    case lasting(seconds: Double)

    /// The steps a second for a run with `steps` steps left, or nil for full speed. `lasting` rounds down to two
    /// significant digits (2,340 steps over 150 s: 15/s, not 15.6/s), so the header shows a number a person can type.
    public func stepsPerSecond(stepsLeft steps: Int) -> Double? {
        switch self {
        case .off: return nil
        case .stepsPerSecond(let r): return r < Command.maxPace ? r : nil
        case .lasting(let seconds):
            let raw = Double(max(1, steps)) / max(1, seconds)
            guard raw < Command.maxPace else { return nil }
            let magnitude = pow(10, (log10(raw)).rounded(.down) - 1)
            return max(magnitude, (raw / magnitude * (1 + 1e-9)).rounded(.down) * magnitude)
        }
    }
}
