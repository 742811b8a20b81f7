import ArgumentParser
import Foundation
import LRLog

/// The runs named on the command line, and which imported tags play which part.
struct RunInputs: ParsableArguments {
    @Argument(help: "Runs: lrtop .jsonl logs, TensorBoard event files or log folders, CSV files (Lightning metrics.csv or any CSV with a step column).")
    var runs: [String] = []
    @Option(name: .customLong("loss-tag"), help: "Imported logs: the tag holding the training loss (default: guessed by name).")
    var lossTag: String?
    @Option(name: .customLong("lr-tag"), help: "Imported logs: the tag holding the LR (repeatable, one per group; default: guessed).")
    var lrTags: [String] = []
    @Option(name: .customLong("acc-tag"), help: "Imported logs: the validation accuracy tag (default: guessed).")
    var accTag: String?
    @Option(name: .customLong("val-loss-tag"), help: "Imported logs: the validation loss tag (default: guessed).")
    var valLossTag: String?

    var hasMappingOverride: Bool { lossTag != nil || !lrTags.isEmpty || accTag != nil || valLossTag != nil }

    /// Loads every run, printing one line per problem to stderr; exits non-zero only when nothing could be read.
    func load() -> [RunData] {
        guard !runs.isEmpty else { fail("name at least one run: a .jsonl log, a TensorBoard file or folder, or a CSV") }
        var loaded: [RunData] = []
        for path in runs {
            let url = URL(fileURLWithPath: path)
            do {
                let result = try RunLoader.load(url)
                for w in result.warnings { printErr("lrtop: warning: \(w)") }
                if result.runs.isEmpty { printErr("lrtop: warning: \(path): no runs found") }
                for var run in result.runs {
                    if hasMappingOverride { run.applyMapping(mapping(for: run)) }
                    loaded.append(run)
                }
            } catch {
                printErr("lrtop: error: \(error)")
            }
        }
        guard !loaded.isEmpty else { fail("nothing could be read from \(runs.joined(separator: ", "))") }
        return loaded
    }

    private func mapping(for run: RunData) -> TagMapping {
        var m = run.mapping
        if let lossTag { m.loss = lossTag }
        if !lrTags.isEmpty { m.lrs = lrTags }
        if let accTag { m.evalAccuracy = accTag }
        if let valLossTag { m.evalLoss = valLossTag }
        for tag in m.usedTags where run.series(tag) == nil && run.format != .runLog {
            printErr("lrtop: warning: \(run.source): no tag '\(tag)' (tags: \(run.tags.joined(separator: ", ")))")
        }
        return m
    }
}

/// The `--summary` table: one row per run.
enum RunSummary {
    static func table(_ runs: [RunData]) -> String {
        let head = ["run", "format", "steps", "final loss", "best loss", "final acc", "best acc", "interventions", "ended"]
        var rows: [[String]] = []
        for r in runs {
            let s = r.steps
            let losses = s.loss.filter { $0.isFinite }
            let lastStep = s.step.last.map(String.init) ?? "0"
            let finalLoss = s.loss.last(where: { $0.isFinite }).map { String(format: "%.4f", $0) } ?? "-"
            let bestLoss = losses.min().map { String(format: "%.4f", $0) } ?? "-"
            let accs = r.evals.map(\.accuracy).filter { $0.isFinite }
            let finalAcc = accs.last.map { String(format: "%.2f%%", $0 * 100) } ?? "-"
            let bestAcc = accs.max().map { String(format: "%.2f%%", $0 * 100) } ?? "-"
            let interventions = r.events.filter { $0.kind == .command || $0.kind == .rollback }.count
            let guards = r.events.filter { $0.kind == .guardTrip }.count
            let ended = r.end?.reason ?? (r.format == .runLog ? "(still running or cut short)" : "-")
            rows.append([r.name, r.format.rawValue, lastStep, finalLoss, bestLoss, finalAcc, bestAcc,
                         "\(interventions)" + (guards > 0 ? " (+\(guards) guard)" : ""), ended])
        }
        let widths = head.indices.map { c in ([head] + rows).map { $0[c].count }.max()! }
        func fmt(_ row: [String]) -> String {
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([fmt(head)] + rows.map(fmt)).joined(separator: "\n")
    }
}
