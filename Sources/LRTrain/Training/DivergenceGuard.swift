import Foundation
import LRLog

/// Watches the loss for divergence: a NaN or infinite loss or gradient, or a loss far above its reference.
///
/// It is armed from the first step. The reference is the lowest value a smoothed (EMA) loss has reached, a running
/// minimum that starts at the run's first loss (measured on the initial weights, before any LR could act), so the
/// losses of an early explosion (2.3 → 811 → 3e6 at `--lr 50`) cannot raise it: the second of those trips. A
/// smoothed value rather than the best single batch, because late in training one lucky batch can be 5x below the
/// typical loss and comparing against it would trip on healthy runs. It is floored at a tenth of the first loss: a
/// run whose loss nears zero (0.002 on an easy task) sees ordinary batches 10x above that, which is noise.
public struct DivergenceGuard: Codable, Sendable, Equatable {
    /// Trip when a step's loss exceeds `factor` × the reference; 0 disables that check (NaN/inf always trip).
    public var factor: Double
    public var smoothing = 0.98
    private(set) var ema: Double? = nil
    /// The running minimum of `ema`.
    private(set) var best: Double? = nil
    private(set) var seen = 0
    /// The first healthy loss.
    private(set) var initial: Double? = nil

    public init(factor: Double) { self.factor = factor }

    /// The loss above which a step trips the spike check (nil before the first step, or with the check off).
    public var threshold: Double? {
        guard factor > 0, let best, let initial else { return nil }
        return factor * max(best, 0.1 * initial)
    }

    /// Returns why the step must not be applied, or nil when it is healthy (and then learns from it).
    public mutating func check(loss: Double, gradNorm: Double) -> String? {
        if !loss.isFinite { return "loss is \(loss) (not finite)" }
        if !gradNorm.isFinite { return "gradient norm is \(gradNorm) (not finite)" }
        if let threshold, loss > threshold {
            return "loss \(short(loss)) is above \(short(factor))x its reference \(short(threshold / factor))"
                + " (the lowest smoothed loss, at least a tenth of the first)"
        }
        seen += 1
        if initial == nil { initial = loss }
        let smoothed = ema.map { $0 * smoothing + loss * (1 - smoothing) } ?? loss
        ema = smoothed
        best = min(best ?? smoothed, smoothed)
        return nil
    }

    /// Whether a state read from a checkpoint is one this guard could have reached by `step`.
    func isValid(atStep step: Int) -> Bool {
        let values = [ema, best, initial].compactMap { $0 }
        return factor.isFinite && factor >= 0 && smoothing >= 0 && smoothing < 1 && (0...max(0, step)).contains(seen)
            && values.allSatisfy { $0.isFinite && $0 >= 0 }
    }

    private func short(_ v: Double) -> String { String(format: "%.4g", v) }
}

extension Trainer {
    /// Rollbacks in a row, with no step past the divergence between them, before the guard gives up rolling back.
    static let maxRollbacksInARow = 3

    /// What the guard's trip does to the run, by `--on-divergence`: pause, roll back (LR halved) or stop.
    ///
    /// The tripping step's gradients never reach the weights: the optimizer step is skipped. Weights that an
    /// earlier step already made non-finite (an LR so large the update overflowed) are put back from the latest
    /// checkpoint whatever the action, and are never saved (`saveCheckpoint` refuses non-finite tensors).
    ///
    /// Rolling back halves the LR once more each time the run diverges again before it gets past the step where it
    /// last diverged; after `maxRollbacksInARow` such rollbacks the divergence is not the LR's alone, and the guard
    /// pauses the run for a person to decide (a headless run, which nobody can resume, stops), saying so.
    func divergence(_ why: String, loss stepLoss: Double) -> EndReason? {
        network.zeroGrad()
        let lrs = optimizer.groups.map(\.lr)
        let tripStep = step + 1
        let trip = "\(why) at step \(tripStep)"
        let rollingBack = config.guardAction == .rollback
        if rollingBack && tripStep > divergedAtStep { rollbacksInARow = 0 }
        if rollingBack && rollbacksInARow >= Self.maxRollbacksInARow {
            let n = rollbacksInARow
            rollbacksInARow = 0
            let gaveUp = "\(trip); \(n) rollbacks in a row (the LR halved each time, now \(lrText(lrs))) did not get the "
                + "run past step \(divergedAtStep)"
            divergedAtStep = 0
            if options.headless {
                emit(event: .guardTrip, text: "guard", before: lrs, message: "\(gaveUp): run stopped (headless: nobody to resume it)")
                channel.update { $0.message = gaveUp + ": stopped" }
                return .diverged
            }
            return act(gaveUp + "; rolling back again would not help: lower the LR or change the schedule, then resume",
                       lrs: lrs, pauseAnyway: true)
        }
        guard rollingBack || !weightsAreFinite else { return act(trip, lrs: lrs) }
        guard let target = checkpoints.latest else {
            let broken = weightsAreFinite ? "" : "; the weights are no longer finite (they will not be saved)"
            return act(trip + broken + "; no checkpoint to roll back to", lrs: lrs, pauseAnyway: rollingBack)
        }
        do {
            try restore(target.state, tensors: target.tensors)
        } catch {
            return act("\(trip); rollback failed: \(error)", lrs: lrs, pauseAnyway: rollingBack)
        }
        guard rollingBack else {
            return act(trip + "; the weights were no longer finite: restored step \(target.state.step)'s checkpoint", lrs: lrs)
        }
        rollbacksInARow += 1
        divergedAtStep = max(divergedAtStep, tripStep)
        let factor = Foundation.pow(0.5, Double(rollbacksInARow))
        for g in optimizer.groups { g.lr *= factor }
        lrControl.markOverridden(all: optimizer.groups.count)
        let halved = rollbacksInARow == 1 ? "halved the LR" : "halved the LR again (\(rollbacksInARow) rollbacks in a row)"
        emit(event: .guardTrip, text: "guard", result: EventResult(rolledBackTo: target.state.step), before: lrs,
             message: "\(trip); rolled back to step \(target.state.step) and \(halved)")
        return nil
    }

    private func lrText(_ lrs: [Double]) -> String { lrs.map { String(format: "%.3g", $0) }.joined(separator: ",") }

    /// Stops (returning the end reason) or pauses, logging the trip.
    private func act(_ message: String, lrs: [Double], pauseAnyway: Bool = false) -> EndReason? {
        if config.guardAction == .stop && !pauseAnyway {
            emit(event: .guardTrip, text: "guard", before: lrs, message: "\(message); run stopped")
            channel.update { $0.message = message }
            return .diverged
        }
        let advice = pauseAnyway ? "paused" : "paused: lower the LR (e.g. 'lr /10') and resume, or roll back"
        emit(event: .guardTrip, text: "guard", result: EventResult(paused: true), before: lrs,
             message: "\(message); \(advice)")
        pause(reason: message)
        pausedByGuard = message
        return nil
    }

    /// Parameters and buffers hold only finite values (a pass over them: run only when the guard trips and
    /// before a checkpoint is written).
    var weightsAreFinite: Bool {
        network.parameters.allSatisfy { $0.value.sumOfSquares.isFinite }
            && network.buffers.allSatisfy { $0.tensor.sumOfSquares.isFinite }
    }
}
