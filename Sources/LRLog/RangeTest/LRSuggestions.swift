import Foundation

// The LR range test's suggestions, ported from fastai (fastai/callback/schedule.py: `valley`, `steep`, `minimum`,
// `slide`, and the slicing `Learner.lr_find` does before calling them) and from PyTorch Lightning
// (tuner/lr_finder.py: `_LRFinder.suggestion`). Both libraries turn the recorded Python floats into float32 tensors
// first, so the arithmetic here is Float with the same operation order: on the same curve the same index wins,
// spec/lr_find_curves.json (recorded from the libraries by scripts/record_lr_find_fixtures.py) holds them to it.

/// The suggestions for one range-test curve; nil where the library gives none (a curve too short for it).
public struct LRSuggestions: Equatable, Sendable {
    /// fastai's default: about two thirds down the longest descending run of the curve.
    public var valley: Double?
    /// fastai: where the loss falls fastest against log(LR).
    public var steep: Double?
    /// fastai: a tenth of the LR at the lowest loss.
    public var minimum: Double?
    /// fastai: the interval slide rule.
    public var slide: Double?
    /// Lightning's `suggestion()`: the steepest gradient against the LR after skipping the first 10 points and
    /// the last one.
    public var lightning: Double?

    public init(valley: Double? = nil, steep: Double? = nil, minimum: Double? = nil, slide: Double? = nil,
                lightning: Double? = nil) {
        self.valley = valley; self.steep = steep; self.minimum = minimum; self.slide = slide; self.lightning = lightning
    }

    /// The suggestions in display order with their names (valley first: it is the default).
    public var named: [(name: String, lr: Double)] {
        [("valley", valley), ("steep", steep), ("min/10", minimum), ("slide", slide), ("lightning", lightning)]
            .compactMap { name, lr in lr.map { (name, $0) } }
    }

    /// Computes every suggestion for a curve of LRs and smoothed losses recorded over a sweep planned for `numIt`
    /// steps (the sweep may have stopped before).
    public init(lrs: [Double], losses: [Double], numIt: Int) {
        let fastai = FastaiSuggestions.trimmed(lrs: lrs, losses: losses, numIt: numIt)
        self.init(valley: FastaiSuggestions.valley(lrs: fastai.lrs, losses: fastai.losses),
                  steep: FastaiSuggestions.steep(lrs: fastai.lrs, losses: fastai.losses),
                  minimum: FastaiSuggestions.minimum(lrs: fastai.lrs, losses: fastai.losses),
                  slide: FastaiSuggestions.slide(lrs: fastai.lrs, losses: fastai.losses),
                  lightning: LightningSuggestion.suggestion(lrs: lrs, losses: losses))
    }
}

/// fastai's suggestion functions, on the float32 values `tensor()` makes of the recorder's lists.
public enum FastaiSuggestions {
    /// What `Learner.lr_find` hands the functions: `recorder.lrs[num_it//10:-5]` (and the losses alike), cut at the
    /// first NaN loss.
    public static func trimmed(lrs: [Double], losses: [Double], numIt: Int) -> (lrs: [Float], losses: [Float]) {
        let n = min(lrs.count, losses.count)
        let lo = numIt / 10, hi = n - 5
        guard lo < hi else { return ([], []) }
        var l = lrs[lo..<hi].map(Float.init)
        var v = losses[lo..<hi].map(Float.init)
        if let nan = v.firstIndex(where: \.isNaN) {
            l.removeSubrange(nan...)
            v.removeSubrange(nan...)
        }
        return (l, v)
    }

    /// The index of the first smallest value, as torch's and numpy's `argmin`: a NaN wins (the first one).
    static func argmin(_ values: [Float]) -> Int? {
        if let nan = values.firstIndex(where: \.isNaN) { return nan }
        guard var best = values.indices.first else { return nil }
        for i in values.indices where values[i] < values[best] { best = i }
        return best
    }

    public static func valley(lrs: [Float], losses: [Float]) -> Double? {
        let n = losses.count
        guard n > 0 else { return nil }
        var maxStart = 0, maxEnd = 0
        var lds = [Int](repeating: 1, count: n)
        for i in 1..<max(1, n) {
            for j in 0..<i {
                if losses[i] < losses[j] && lds[i] < lds[j] + 1 { lds[i] = lds[j] + 1 }
                if lds[maxEnd] < lds[i] {
                    maxEnd = i
                    maxStart = maxEnd - lds[maxEnd]
                }
            }
        }
        let sections = Double(maxEnd - maxStart) / 3
        let idx = maxStart + Int(sections) + Int(sections / 2)
        // Python's negative index (max_start can be -1 when the longest run starts at 0).
        let k = idx < 0 ? n + idx : idx
        guard lrs.indices.contains(k) else { return nil }
        return Double(lrs[k])
    }

    public static func steep(lrs: [Float], losses: [Float]) -> Double? {
        guard losses.count >= 2 else { return nil }
        let grads = (0..<losses.count - 1).map { i in
            (losses[i + 1] - losses[i]) / (logf(lrs[i + 1]) - logf(lrs[i]))
        }
        guard let i = argmin(grads) else { return nil }
        return Double(lrs[i])
    }

    public static func minimum(lrs: [Float], losses: [Float]) -> Double? {
        guard let i = argmin(losses) else { return nil }
        return Double(lrs[i]) / 10
    }

    /// `np.gradient` of float32 values with unit spacing.
    static func gradient(_ f: [Float]) -> [Float] {
        let n = f.count
        guard n >= 2 else { return [] }
        var g = [Float](repeating: 0, count: n)
        g[0] = f[1] - f[0]
        g[n - 1] = f[n - 1] - f[n - 2]
        if n > 2 { for i in 1..<n - 1 { g[i] = (f[i + 1] - f[i - 1]) / 2 } }
        return g
    }

    public static func slide(lrs: [Float], losses: [Float], lrDiff: Int = 15, thresh: Float = 0.005,
                             adjustValue: Double = 1) -> Double? {
        let n = losses.count
        // fastai indexes from the end (lrs[-16]); a shorter curve raises an IndexError there.
        guard n > lrDiff else { return nil }
        let grad = gradient(losses)
        var r = n - 1, l = r - lrDiff
        var localMin = lrs[l]
        while l >= 0 && abs(grad[r] - grad[l]) > thresh {
            localMin = lrs[l]
            r -= 1
            l -= 1
        }
        return Double(localMin) * adjustValue
    }
}

/// Lightning's `_LRFinder.suggestion`.
public enum LightningSuggestion {
    public static func suggestion(lrs: [Double], losses: [Double], skipBegin: Int = 10, skipEnd: Int = 1) -> Double? {
        let n = min(lrs.count, losses.count)
        guard skipBegin < n - skipEnd else { return nil }
        let kept = (skipBegin..<(n - skipEnd)).filter { Float(losses[$0]).isFinite }
        guard kept.count >= 2 else { return nil }
        let x = kept.map { Float(lrs[$0]) }
        let f = kept.map { Float(losses[$0]) }
        let g = gradient(f, spacing: x)
        guard let best = FastaiSuggestions.argmin(g) else { return nil }
        return lrs[kept[best]]
    }

    /// `torch.gradient(f, spacing=[x])` with edge_order 1, in its operation order.
    static func gradient(_ f: [Float], spacing x: [Float]) -> [Float] {
        let n = f.count
        let dx = (0..<n - 1).map { x[$0 + 1] - x[$0] }
        var g = [Float](repeating: 0, count: n)
        g[0] = (f[1] - f[0]) / dx[0]
        g[n - 1] = (f[n - 1] - f[n - 2]) / dx[n - 2]
        if n > 2 {
            for i in 1..<n - 1 {
                let dx1 = dx[i - 1], dx2 = dx[i]
                let a = -dx2 / (dx1 * (dx1 + dx2))
                let b = (dx2 - dx1) / (dx1 * dx2)
                let c = dx1 / (dx2 * (dx1 + dx2))
                g[i] = a * f[i - 1] + b * f[i] + c * f[i + 1]
            }
        }
        return g
    }
}
