import Foundation
import LRCommand

/// A range test's curve as it grows: each step's LR and raw loss, the debiased smoothed loss fastai records, and
/// whether the sweep is over. The trainer feeds it while sweeping; a reader rebuilds it from the sub-run's step
/// records the same way, so both see the same curve and the same suggestions.
public struct LRRangeCurve: Equatable, Sendable {
    public enum Stop: Equatable, Sendable {
        /// Every planned step was taken.
        case completed
        /// The smoothed loss passed 4x its minimum (fastai's stop_div).
        case diverged
        /// The loss became NaN or infinite.
        case nonFinite

        public var text: String {
            switch self {
            case .completed: return "all steps taken"
            case .diverged: return "stopped: loss > 4x min"
            case .nonFinite: return "stopped: loss not finite"
            }
        }
    }

    public let settings: LRRangeSettings
    public private(set) var lrs: [Double] = []
    public private(set) var rawLosses: [Double] = []
    public private(set) var losses: [Double] = []
    public private(set) var stop: Stop?
    private var average = 0.0
    private var best = Double.infinity

    public init(settings: LRRangeSettings) { self.settings = settings }

    public var count: Int { lrs.count }
    /// The LR of the next step, or nil once the sweep is over.
    public var nextLR: Double? { stop == nil ? settings.lr(at: lrs.count) : nil }

    /// Records one step; returns whether the sweep goes on.
    @discardableResult
    public mutating func append(lr: Double, loss: Double) -> Bool {
        guard stop == nil else { return false }
        lrs.append(lr)
        rawLosses.append(loss)
        let beta = LRRangeSettings.smoothing
        average = beta * average + (1 - beta) * loss
        let smoothed = average / (1 - pow(beta, Double(lrs.count)))
        losses.append(smoothed)
        if !loss.isFinite || !smoothed.isFinite {
            stop = .nonFinite
        } else {
            if smoothed < best { best = smoothed }
            if smoothed > LRRangeSettings.divergenceFactor * best { stop = .diverged }
            else if lrs.count >= settings.steps { stop = .completed }
        }
        return stop == nil
    }

    public var suggestions: LRSuggestions { LRSuggestions(lrs: lrs, losses: losses, numIt: settings.steps) }

    /// One line for the run log's event and the headless summary: "87 steps, stopped: loss > 4x min; valley 2.1e-3 · ...".
    public var summary: String {
        var text = "\(count) step" + (count == 1 ? "" : "s")
        if let stop { text += ", " + stop.text }
        let named = suggestions.named
        text += named.isEmpty ? "; too few points for a suggestion" : "; "
            + named.map { "\($0.name) \(LRRangeCurve.format($0.lr))" }.joined(separator: " · ")
        return text
    }

    /// The point nearest `lr` on a log scale (where a suggestion sits on the curve).
    public func index(nearest lr: Double) -> Int? {
        guard lr > 0, !lrs.isEmpty else { return nil }
        let x = log(lr)
        return lrs.indices.min { abs(log(lrs[$0]) - x) < abs(log(lrs[$1]) - x) }
    }

    /// The smoothed loss at `lr`, interpolated linearly in log(LR) between the points around it.
    public func loss(at lr: Double) -> Double? {
        guard lr > 0, let first = lrs.first, let last = lrs.last, lr >= first, lr <= last else {
            return index(nearest: lr).map { losses[$0] }
        }
        guard let hi = lrs.firstIndex(where: { $0 >= lr }) else { return losses.last }
        if hi == 0 || lrs[hi] == lr { return losses[hi] }
        let t = (log(lr) - log(lrs[hi - 1])) / (log(lrs[hi]) - log(lrs[hi - 1]))
        return losses[hi - 1] + t * (losses[hi] - losses[hi - 1])
    }

    /// An LR as commands take it back: three significant digits, `2.09e-03` style.
    public static func format(_ lr: Double) -> String { String(format: "%.3g", lr) }
}

extension LRRangeCurve {
    /// Rebuilds the curve of a find-lr sub-run from its log's records (nil when the records are not one).
    public init?(records: [RunRecord]) {
        guard case .header(let header)? = records.first, header.subrun?.kind == .findLR else { return nil }
        let settings = LRRangeSettings(config: header.config)
            ?? LRRangeSettings(steps: header.totalSteps ?? LRRangeSettings.defaultSteps)
        self.init(settings: settings)
        for r in records.dropFirst() { if case .step(let s) = r { append(lr: s.lrs.first ?? .nan, loss: s.loss) } }
    }
}
