import Foundation
import LRLog
import LRCommand

/// What one LR range test found, and where its sub-run log is.
public struct LRRangeTestResult: Sendable {
    public var fromStep: Int
    public var curve: LRRangeCurve
    /// The sub-run's folder relative to the run folder (`subruns/find-lr-40`), nil when the run writes no files.
    public var folder: String?
    public var seconds: Double
}

extension Trainer {
    /// The LR range test (fastai's `lr_find`): from this step boundary, trains with the LR growing exponentially
    /// from `settings.start` towards `settings.end`, one step per LR, until the planned steps are taken or the
    /// smoothed loss passes 4x its minimum; then puts weights, buffers, optimizer state, schedule, LR control, data
    /// position, dropout RNG, step and guard back exactly as they were, so the run continues as if nothing
    /// happened. The sweep is logged as a sub-run in `RUN_DIR/subruns/find-lr-STEP/log.jsonl`.
    func runRangeTest(_ settings: LRRangeSettings) throws -> LRRangeTestResult {
        let started = Date()
        let saved = snapshot(label: "find-lr")
        let savedGradNorm = lastGradNorm
        let fromStep = step
        let sub = try openRangeTestLog(settings)
        var curve = LRRangeCurve(settings: settings)
        var sweepClock = StepClock()
        var failure: Error? = nil
        channel.update { $0.message = "find-lr: sweeping the LR from \(LRRangeCurve.format(settings.start)) to \(LRRangeCurve.format(settings.end))" }
        var interrupted = false
        while let lr = curve.nextLR {
            // Ctrl-C or SIGTERM ends the sweep here; the run's loop then ends the run as it would have.
            if SignalFlag.received { interrupted = true; break }
            sweepClock.begin()
            for g in optimizer.groups { g.lr = lr }
            let epoch = step / stepsPerEpoch
            let (stepLoss, gradNorm) = computeGradients()
            clipGradients(norm: gradNorm)
            optimizer.step()
            step += 1
            curve.append(lr: lr, loss: stepLoss)
            let record = StepRecord(step: curve.count, epoch: epoch, lrs: optimizer.groups.map { _ in lr }, loss: stepLoss,
                                    gradNorm: gradNorm, samplesPerSec: sweepClock.end(samples: config.batchSize * config.accumSteps),
                                    wallTime: Date().timeIntervalSince(started))
            do { try sub?.writer.write(step: record) } catch { failure = error; break }
        }
        let end = EndRecord(reason: interrupted ? .interrupted : curve.stop == .completed ? .completed : .stopped,
                            step: curve.count, epoch: 0, finalLoss: curve.rawLosses.last, bestEvalLoss: nil,
                            bestAccuracy: nil, finalAccuracy: nil, wallTime: Date().timeIntervalSince(started),
                            message: (interrupted ? "interrupted by \(SignalFlag.name); " : "") + curve.summary)
        if failure == nil {
            do { try sub?.writer.write(end: end); try sub?.writer.close() } catch { failure = error }
        }
        try restore(saved.0, tensors: saved.1)
        lastGradNorm = savedGradNorm
        network.zeroGrad()
        channel.update { [pausedByGuard] in $0.message = pausedByGuard }
        if let failure {
            throw CommandError("find-lr: its sub-run log \(sub?.folder ?? "") could not be written (\(failure)); the run's state is restored")
        }
        let result = LRRangeTestResult(fromStep: fromStep, curve: curve, folder: sub?.folder,
                                       seconds: Date().timeIntervalSince(started))
        lastRangeTest = result
        return result
    }

    /// Makes `subruns/find-lr-STEP` (`-2`, `-3` ... when taken) and its log with the sub-run header.
    private func openRangeTestLog(_ settings: LRRangeSettings) throws -> (folder: String, writer: RunLogWriter)? {
        guard let runDirectory, let logURL else { return nil }
        let base = runDirectory.appendingPathComponent("subruns")
        var name = "find-lr-\(step)", n = 2
        while FileManager.default.fileExists(atPath: base.appendingPathComponent(name).path) {
            name = "find-lr-\(step)-\(n)"
            n += 1
        }
        let dir = base.appendingPathComponent(name)
        let writer: RunLogWriter
        do {
            try SafeFiles.prepareFolder(dir, what: "the find-lr sub-run folder", instead: "check the run folder")
            // Flushed often: the live UI draws the curve from this file while the sweep runs.
            writer = try RunLogWriter(url: dir.appendingPathComponent("log.jsonl"), flushInterval: 0.1)
        } catch {
            throw CommandError("find-lr: cannot create its sub-run log in \(dir.path): \(error); nothing changed")
        }
        // The parent log from this folder: `../../run.jsonl` when it is in the run folder, else its full path.
        let parent = logURL.deletingLastPathComponent().standardizedFileURL.path == runDirectory.standardizedFileURL.path
            ? "../../" + logURL.lastPathComponent : logURL.path
        var cfg = config.flattened
        cfg["dataset"] = datasetName
        cfg.merge(settings.configEntries) { _, new in new }
        let header = RunHeader(lrtopVersion: options.lrtopVersion, config: cfg, seed: config.seed,
                               startTime: ISO8601DateFormatter().string(from: Date()), groups: optimizer.groups.map(\.name),
                               stepsPerEpoch: stepsPerEpoch, totalSteps: settings.steps,
                               subrun: SubRun(kind: .findLR, label: settings.commandText, fromStep: step, parent: parent))
        do { try writer.write(header: header) } catch {
            throw CommandError("find-lr: cannot write its sub-run log in \(dir.path): \(error); nothing changed")
        }
        return ("subruns/" + name, writer)
    }
}

extension Trainer {
    /// `lrtop find-lr --headless`: the run's header, one range test from its current step, and an end record
    /// saying that no training happened (and no final checkpoint: the weights are the ones it started with).
    /// Returns the test's result, or nil when it could not run (its error event says why).
    public func runRangeTestOnly(_ settings: LRRangeSettings) -> LRRangeTestResult? {
        rangeTestOnly = true
        channel.send(.findLR(settings))
        channel.send(.stop)
        run()
        return lastRangeTest
    }
}
