import Foundation
import LRLog
import LRTrain
import LRTUI

/// The sweep's configurations as TrialTable rows: the live leaderboard and the final table printed at the end.
enum SweepTable {
    static let columns: [TrialColumn] = [
        .result("#", better: .lower), .configuration("config"), .configuration("optimizer"), .configuration("lr"),
        .configuration("warmup"), .configuration("sched", maxWidth: 28), .result("rung"), .result("steps"),
        .result("val loss", better: .lower), .result("val acc", better: .higher), .series("val curve"),
        .state(), .result("time", better: .lower),
    ]

    /// Rows in rank order: furthest rung first, then by the score halving ranks with (mean over seeds).
    static func rows(_ s: SweepSnapshot) -> [TrialRow] {
        let ranked = ranking(s)
        return ranked.enumerated().map { rank, c in
            let cfg = s.configurations[c]
            let trials = s.trials(of: c)
            let reached = s.rungReached(c)
            func estimate(_ value: (EvalRecord) -> Double, _ style: TrialNumberStyle) -> TrialValue {
                guard let e = s.estimate(of: c, value), !e.mean.isNaN else { return .missing }
                return Self.value(e.mean, e.spread, style, seeds: s.seeds.count)
            }
            let series = trials.map { $0.evals.map(\.loss) }
            let shortest = series.map(\.count).min() ?? 0
            let curve: [Double?] = (0..<shortest).map { i in series.map { $0[i] }.reduce(0, +) / Double(series.count) }
            let state = s.state(of: c)
            return TrialRow(id: cfg.name, cells: [
                .number(Double(rank + 1), .integer), .text(cfg.name), .text(cfg.optimizer), .number(cfg.lr, .lr),
                .text(s.warmupText(of: cfg)), .text(cfg.schedulerText),
                reached.map { .text("\($0 + 1)/\(s.budgets.count)") } ?? .missing,
                .number(Double(trials.map(\.step).max() ?? 0), .integer),
                estimate({ $0.loss }, .metric), estimate({ $0.accuracy }, .percent),
                .series(curve), .state(state.rawValue, tone(state)),
                .number(trials.map(\.seconds).reduce(0, +), .duration),
            ])
        }
    }

    /// Per configuration: its trials' logs, and why a trial failed.
    static func details(_ s: SweepSnapshot, directory: URL) -> [String: String] {
        var out: [String: String] = [:]
        for (c, cfg) in s.configurations.enumerated() {
            let trials = s.trials(of: c)
            var text = "\(cfg.name) \(cfg.label): " + trials.map { "trials/\($0.name)" }.joined(separator: ", ")
            for t in trials { if let m = t.message { text += "; \(t.name) \(m)" } }
            out[cfg.name] = text
        }
        return out
    }

    /// A mean over the seeds, with its spread when there are several.
    static func value(_ mean: Double, _ spread: Double, _ style: TrialNumberStyle, seeds: Int) -> TrialValue {
        seeds > 1 ? .estimate(mean: mean, spread: spread, style) : .number(mean, style)
    }

    /// Configuration indices, best first.
    static func ranking(_ s: SweepSnapshot) -> [Int] {
        s.configurations.indices.sorted { a, b in
            let ra = s.rungReached(a) ?? -1, rb = s.rungReached(b) ?? -1
            if ra != rb { return ra > rb }
            let sa = ra >= 0 ? s.score(of: a, rung: ra) : nil, sb = rb >= 0 ? s.score(of: b, rung: rb) : nil
            switch (sa, sb) {
            case let (x?, y?) where x != y: return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a < b
            }
        }
    }

    static func tone(_ state: TrialState) -> TrialTone {
        switch state {
        case .queued, .waiting: return .waiting
        case .running: return .active
        case .promoted, .done: return .good
        case .stopped: return .stopped
        case .failed, .interrupted: return .bad
        }
    }

    /// The table as text lines (no colours), at most `width` cells wide (as wide as its columns need).
    static func text(_ s: SweepSnapshot, width: Int = 240) -> [String] {
        let rows = rows(s)
        var buffer = Buffer(width: width, height: rows.count + 1)
        TrialTable(columns: columns, rows: rows, palette: Palette(theme: .builtinDefault, depth: .none))
            .render(into: &buffer, area: buffer.area)
        return buffer.trimmedLines()
    }
}
