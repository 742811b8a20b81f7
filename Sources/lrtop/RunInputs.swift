import ArgumentParser
import Foundation
import LRLog
import LRTUI

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

    /// Loads every run, printing one line per problem to stderr; throws (a non-zero exit) only when nothing could be read.
    func load() throws -> [RunData] {
        var warnings: [String] = []
        return try load(warnings: &warnings)
    }

    /// Loads every run and prints one line per problem to stderr ("lrtop: warning: FILE:LINE: what"); `warnings`
    /// gets the same lines without the prefix (for the UI's notice bar). A file that cannot be read at all is an
    /// error line and the others are still loaded; when nothing can be read it throws `ExitCode(1)`.
    func load(warnings: inout [String]) throws -> [RunData] {
        guard !runs.isEmpty else { try fail("name at least one run: a .jsonl log, a TensorBoard file or folder, or a CSV") }
        var loaded: [RunData] = []
        var unreadable = 0
        func warn(_ w: String) {
            printErr("lrtop: warning: \(w)")
            warnings.append(w)
        }
        for path in runs {
            let url = URL(fileURLWithPath: path)
            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size == 0,
               (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType == .typeRegular {
                printErr("lrtop: error: \(path): empty file (no records to show)")
                unreadable += 1
                continue
            }
            do {
                var result = try RunLoader.load(url)
                if result.runs.count == 1, result.runs[0].format == .runLog, result.runs[0].header?.subrun == nil {
                    // A run's log named alone: its fork branches beside it are drawn over it.
                    for branch in BranchSubruns.find(besideLog: url) {
                        do { result.runs.append(try RunLogReader.readRun(at: branch.log)) } catch { warn("\(error)") }
                    }
                }
                for w in result.warnings { warn(w) }
                if result.runs.isEmpty { warn("\(path): no runs found") }
                for var run in result.runs {
                    if hasMappingOverride { run.applyMapping(mapping(for: run)) }
                    if let w = Self.nonFiniteLossWarning(run) { warn(w) }
                    loaded.append(run)
                }
            } catch {
                printErr("lrtop: error: \(error)")
                unreadable += 1
            }
        }
        guard !loaded.isEmpty else {
            // Each file already has its line; one more would only repeat it.
            if unreadable == runs.count { throw ExitCode(1) }
            try fail("nothing could be read from \(runs.joined(separator: ", "))")
        }
        return loaded
    }

    /// Branch sub-runs (`fork`) named "bK@STEP label" after their parent, so legends and the branches table
    /// say which is which (their file names are all `log.jsonl`).
    static func nameBranches(_ runs: [RunData]) -> [RunData] {
        runs.map { run in
            guard let sub = run.header?.subrun, sub.kind == .branch else { return run }
            let folder = URL(fileURLWithPath: run.source).deletingLastPathComponent().lastPathComponent
            guard let k = BranchSubruns.number(folder: folder) else { return run }
            var named = run
            named.name = BranchSubruns.Found.displayName(number: k, subrun: sub)
            return named
        }
    }

    /// "FILE: step 12: loss is NaN (3 steps with a NaN or infinite loss; drawn as gaps)", or nil. For imports only
    /// the loss series itself counts (a merged row without a loss is not a NaN loss).
    static func nonFiniteLossWarning(_ run: RunData) -> String? {
        var steps: [Int] = [], values: [Double] = []
        if run.format == .runLog {
            guard run.steps.loss.contains(where: { !$0.isFinite }) else { return nil }
            steps = run.steps.step
            values = run.steps.loss.map(Double.init)
        } else if let tag = run.mapping.loss, let series = run.series(tag) {
            steps = series.steps
            values = series.values
        }
        guard let first = values.firstIndex(where: { !$0.isFinite }) else { return nil }
        let count = values.reduce(0) { $1.isFinite ? $0 : $0 + 1 }
        let what = values[first].isNaN ? "NaN" : "infinite"
        return "\(run.source): step \(steps[first]): loss is \(what)"
            + (count > 1 ? " (\(count) steps with a NaN or infinite loss; drawn as gaps)" : " (drawn as a gap)")
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
    static let columns = ["run", "format", "last step", "final loss", "best batch loss", "final acc", "best acc", "interventions",
                          "ended"]

    static func table(_ runs: [RunData]) -> String {
        var rows: [[String]] = []
        for r in runs {
            let s = ReplaySummary(r)
            func loss(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
            func acc(_ v: Double?) -> String { v.map { String(format: "%.2f%%", $0 * 100) } ?? "-" }
            var interventions = "\(s.interventions)"
            if s.guardTrips > 0 { interventions += " (+\(s.guardTrips) guard)" }
            if s.rejected > 0 { interventions += " (+\(s.rejected) rejected)" }
            let ended = s.ended?.rawValue ?? (r.format == .runLog ? "no end record" : "-")
            rows.append([r.name, r.format.rawValue, s.lastStep.map(String.init) ?? "0", loss(s.finalLoss), loss(s.bestLoss),
                         acc(s.finalAccuracy), acc(s.bestAccuracy), interventions, ended])
        }
        return layout(columns, rows)
    }

    /// Columns padded to their widest cell, two spaces apart.
    static func layout(_ columns: [String], _ rows: [[String]]) -> String {
        let widths = columns.indices.map { c in ([columns] + rows).map { $0[c].count }.max()! }
        func fmt(_ row: [String]) -> String {
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([fmt(columns)] + rows.map(fmt)).joined(separator: "\n")
    }

    static let metricColumns = ["run", "metric", "values", "steps", "last", "min", "max", "mean"]

    /// `--summary --metric NAME`: a row per run and metric; a metric no run has is an error naming what there is.
    static func metricTable(_ runs: [RunData], metrics: [String]) -> Result<String, LogError> {
        for name in metrics where !runs.contains(where: { $0.metricSource(named: name) != nil }) {
            let known = runs.flatMap { $0.namedMetrics.map(\.name) }
            var unique: [String] = []
            for k in known where !unique.contains(k) { unique.append(k) }
            let shown = unique.prefix(24).joined(separator: ", ") + (unique.count > 24 ? ", … (\(unique.count) in all)" : "")
            return .failure(LogError("no metric '\(name)' in \(runs.count == 1 ? runs[0].name : "these runs")"
                                     + (unique.isEmpty ? " (it has none)" : " (metrics: \(shown))")))
        }
        func number(_ v: Double?) -> String {
            guard let v else { return "-" }
            guard v.isFinite else { return v.isNaN ? "nan" : v > 0 ? "inf" : "-inf" }
            return (abs(v) >= 1e-3 && abs(v) < 1e6) || v == 0 ? String(format: "%.6g", v) : String(format: "%.4e", v)
        }
        var rows: [[String]] = []
        for name in metrics {
            for r in runs {
                guard let s = MetricSummary(r, metric: name) else {
                    rows.append([r.name, name, "0", "-", "not in this run", "-", "-", "-"])
                    continue
                }
                let steps = s.firstStep.map { first in "\(first)–\(s.lastStep ?? first)" } ?? "-"
                var values = "\(s.count)"
                if s.nonFinite > 0 { values += " (\(s.nonFinite) nan/inf)" }
                rows.append([r.name, name, values, steps, number(s.last),
                             s.min.map { number($0.value) + " @\($0.step)" } ?? "-",
                             s.max.map { number($0.value) + " @\($0.step)" } ?? "-", number(s.mean)])
            }
        }
        return .success(layout(metricColumns, rows))
    }
}
