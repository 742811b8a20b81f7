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
                guard let v = Double(parts[1]), v.isFinite, v > 0 else {
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
