import Foundation

/// The LR range test's sweep (fastai's `LRFinder` defaults): the LR of step i (0-based) is
/// `start · (end/start)^(i/steps)`, so it grows exponentially and reaches `end` only after the last planned step.
public struct LRRangeSettings: Equatable, Sendable {
    public static let defaultStart = 1e-7
    public static let defaultEnd = 10.0
    public static let defaultSteps = 100
    /// fastai's `AvgSmoothLoss(beta=0.98)`.
    public static let smoothing = 0.98
    /// fastai's `stop_div`: the sweep stops once the smoothed loss passes this many times its minimum.
    public static let divergenceFactor = 4.0

    public var start: Double
    public var end: Double
    public var steps: Int

    public init(start: Double = defaultStart, end: Double = defaultEnd, steps: Int = defaultSteps) {
        self.start = start; self.end = end; self.steps = steps
    }

    public func lr(at index: Int) -> Double { start * pow(end / start, Double(index) / Double(steps)) }

    /// The sub-run header's config keys that carry the settings, so a reader rebuilds the same curve.
    public var configEntries: [String: String] {
        ["find_lr_start": "\(start)", "find_lr_end": "\(end)", "find_lr_steps": "\(steps)"]
    }

    /// The settings a sub-run's header carries (nil when it carries none).
    public init?(config: [String: String]) {
        guard let s = config["find_lr_start"].flatMap(Double.init), let e = config["find_lr_end"].flatMap(Double.init),
              let n = config["find_lr_steps"].flatMap(Int.init) else { return nil }
        self.init(start: s, end: e, steps: n)
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The arguments of `find-lr [start=X] [end=Y] [steps=N]` (each key at most once, in any order), checked as the
    /// steering language checks them: the Swift parser and the UI's prompt both read them here.
    public init(arguments args: [String]) throws(ParseError) {
        let usage = "e.g. 'find-lr' or 'find-lr start=1e-6 end=1 steps=200'"
        self.init()
        var seen: Set<String> = []
        for arg in args {
            let parts = arg.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = parts[0].lowercased()
            guard parts.count == 2, ["start", "end", "steps"].contains(key) else {
                throw ParseError(description: "'find-lr' takes start=LR, end=LR and steps=N, got '\(arg)': \(usage)")
            }
            guard seen.insert(key).inserted else { throw ParseError(description: "'find-lr': \(key) given twice") }
            if key == "steps" {
                guard let n = Int(parts[1]), (6...10_000).contains(n) else {
                    throw ParseError(description: "invalid find-lr steps '\(parts[1])': expected a whole number from 6 to 10000")
                }
                steps = n
            } else {
                guard let v = Double(parts[1]), v > 0, v <= Double(Float.greatestFiniteMagnitude) else {
                    throw ParseError(description: "invalid find-lr \(key) '\(parts[1])': expected a positive LR like 1e-7")
                }
                if key == "start" { start = v } else { end = v }
            }
        }
        guard start < end else {
            throw ParseError(description: "'find-lr' needs start < end, got start=\(start) end=\(end)")
        }
    }

    /// The settings of a `find-lr` command's text; nil when the text is another command or does not parse.
    public static func of(command text: String) -> LRRangeSettings? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let verb = words.first?.lowercased(), verb == "find-lr" || verb == "findlr" else { return nil }
        return try? LRRangeSettings(arguments: Array(words.dropFirst()))
    }

    /// As the command is written: `find-lr start=1e-07 end=10.0 steps=100`, the defaults left out.
    public var commandText: String {
        var parts = ["find-lr"]
        if start != Self.defaultStart { parts.append("start=\(start)") }
        if end != Self.defaultEnd { parts.append("end=\(end)") }
        if steps != Self.defaultSteps { parts.append("steps=\(steps)") }
        return parts.joined(separator: " ")
    }
}

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
