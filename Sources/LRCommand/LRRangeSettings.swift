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
    /// steering language checks them.
    public init(arguments args: [String]) throws(ParseError) {
        let usage = "e.g. 'find-lr' or 'find-lr start=1e-6 end=1 steps=200'"
        self.init()
        var written: [String: String] = [:]
        for arg in args {
            let parts = arg.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = parts[0].lowercased()
            guard parts.count == 2, ["start", "end", "steps"].contains(key) else {
                throw ParseError(description: "'find-lr' takes start=LR, end=LR and steps=N, got '\(arg)': \(usage)")
            }
            guard written.updateValue(parts[1], forKey: key) == nil else {
                throw ParseError(description: "'find-lr': \(key) given twice")
            }
            if key == "steps" {
                guard let n = Int(parts[1]) else { throw Self.invalidSteps(parts[1]) }
                steps = n
            } else {
                guard let v = Double(parts[1]) else { throw Self.invalidLR(key, parts[1]) }
                if key == "start" { start = v } else { end = v }
            }
        }
        try check(written: written)
    }

    /// Refuses what the language refuses: an LR that is not finite and positive (and within float32's range: what
    /// trains is float32), a sweep of fewer than 6 or more
    /// than 10,000 steps, `start >= end`. `written` spells values as the person wrote them, for the message.
    public func check(written: [String: String] = [:]) throws(ParseError) {
        for (key, v) in [("start", start), ("end", end)] where !(v.isFinite && v > 0 && v <= Double(Float.greatestFiniteMagnitude)) {
            throw Self.invalidLR(key, written[key] ?? "\(v)")
        }
        guard (6...10_000).contains(steps) else { throw Self.invalidSteps(written["steps"] ?? "\(steps)") }
        guard start < end else {
            throw ParseError(description: "'find-lr' needs start < end, got start=\(start) end=\(end)")
        }
    }

    private static func invalidSteps(_ text: String) -> ParseError {
        ParseError(description: "invalid find-lr steps '\(text)': expected a whole number from 6 to 10000")
    }

    private static func invalidLR(_ key: String, _ text: String) -> ParseError {
        ParseError(description: "invalid find-lr \(key) '\(text)': expected a positive LR like 1e-7")
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
