import Foundation
import LRLog

/// Watches the loss for divergence: a NaN or infinite loss or gradient, or a loss far above its recent best.
///
/// The reference is the best value of a smoothed (EMA) loss rather than the best single batch, because single
/// batches are noisy: late in training one lucky batch can be 5x below the typical loss, and comparing against it
/// would trip on healthy runs. It is floored at a tenth of the first losses: a run whose loss nears zero (0.002 on an
/// easy task) sees ordinary batches 10x above that, which is noise, not divergence.
public struct DivergenceGuard: Codable, Sendable, Equatable {
    /// Trip when a step's loss exceeds `factor` × the best smoothed loss; 0 disables that check (NaN/inf always trip).
    public var factor: Double
    /// Steps to watch before the ratio check arms (the first losses of a run move fast).
    public var armAfter = 20
    public var smoothing = 0.98
    private(set) var ema: Double? = nil
    private(set) var best: Double? = nil
    private(set) var seen = 0
    private(set) var initial: Double? = nil

    public init(factor: Double) { self.factor = factor }

    /// Returns why the step must not be applied, or nil when it is healthy (and then learns from it).
    public mutating func check(loss: Double, gradNorm: Double) -> String? {
        if !loss.isFinite { return "loss is \(loss) (not finite)" }
        if !gradNorm.isFinite { return "gradient norm is \(gradNorm) (not finite)" }
        if factor > 0, seen >= armAfter, let best {
            let reference = max(best, 0.1 * (initial ?? best))
            if loss > factor * reference {
                return "loss \(short(loss)) is above \(short(factor))x its best smoothed value \(short(reference))"
            }
        }
        seen += 1
        ema = ema.map { $0 * smoothing + loss * (1 - smoothing) } ?? loss
        if seen == armAfter / 2 { initial = ema }
        if seen >= armAfter / 2 { best = min(best ?? .infinity, ema!) }
        return nil
    }

    private func short(_ v: Double) -> String {
        let s = String(format: "%.4g", v)
        return s
    }
}

extension Trainer {
    /// What the guard's trip does to the run, by `--on-divergence`: pause, roll back (LR halved) or stop.
    func divergence(_ why: String, loss stepLoss: Double) -> EndReason? {
        // The bad gradients never reach the weights: the optimizer step is skipped.
        network.zeroGrad()
        let lrs = optimizer.groups.map(\.lr)
        switch config.guardAction {
        case .rollback:
            if let target = checkpoints.latest {
                do {
                    try restore(target.state, tensors: target.tensors)
                    for g in optimizer.groups { g.lr *= 0.5 }
                    lrControl.markOverridden(all: optimizer.groups.count)
                    emit(event: .guardTrip, text: "guard", before: lrs,
                         message: "\(why) at step \(step + 1); rolled back to step \(target.state.step) and halved the LR")
                    return nil
                } catch {
                    emit(event: .guardTrip, text: "guard", before: lrs, message: "\(why); rollback failed: \(error)")
                }
            } else {
                emit(event: .guardTrip, text: "guard", before: lrs,
                     message: "\(why) at step \(step + 1); no checkpoint to roll back to, paused")
            }
            pause(reason: why)
            return nil
        case .stop:
            emit(event: .guardTrip, text: "guard", before: lrs, message: "\(why) at step \(step + 1); run stopped")
            channel.update { $0.message = why }
            return .diverged
        case .pause:
            emit(event: .guardTrip, text: "guard", before: lrs,
                 message: "\(why) at step \(step + 1); paused: lower the LR (e.g. 'lr /10') and resume, or roll back")
            pause(reason: why)
            return nil
        }
    }
}
