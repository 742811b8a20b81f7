import ArgumentParser
import Foundation
import LRLog

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run to TensorBoard or CSV, so it opens in TensorBoard or pandas.",
        discussion: """
        lrtop export runs/X/run.jsonl --to tensorboard tb/      (then: tensorboard --logdir tb)
        lrtop export runs/X/run.jsonl --to csv run.csv          (then: pandas.read_csv("run.csv"))
        Every metric goes too: a TensorBoard tag or a CSV column each, under its own name.
        """)

    enum Target: String, ExpressibleByArgument, CaseIterable { case tensorboard, csv }

    @Argument(help: "The run to export (any format 'lrtop replay' reads).") var source: String
    @Option(help: "tensorboard or csv.") var to: Target
    @Argument(help: "Output: a folder (TensorBoard) or a .csv file.") var out: String

    /// "lrtop: with its 12 metrics, each a tag under its own name", or nil when the run has none.
    static func metricsLine(_ run: RunData, to target: Target) -> String? {
        let n = run.metricNames.count
        guard n > 0 else { return nil }
        return "lrtop: with its \(n) metric\(n == 1 ? "" : "s"), each a \(target == .csv ? "column" : "tag") under its own name"
    }

    func run() throws {
        let result: LoadResult
        do { result = try RunLoader.load(URL(fileURLWithPath: source)) } catch { try fail("\(error)") }
        for w in result.warnings { printErr("lrtop: warning: \(w)") }
        guard result.runs.count == 1, let data = result.runs.first else {
            try fail("\(source) holds \(result.runs.count) runs: export one file at a time")
        }
        let outURL = URL(fileURLWithPath: out)
        do {
            switch to {
            case .tensorboard:
                let file = try TensorBoardExport.write(data, to: outURL)
                printOut("lrtop: wrote \(file.path) (\(data.steps.count) steps): tensorboard --logdir \(outURL.path)")
            case .csv:
                try CSVExport.write(data, to: outURL)
                printOut("lrtop: wrote \(outURL.path) (\(data.steps.count) steps)")
            }
        } catch {
            try fail("cannot write \(out): \(FileProblem.reason(error))")
        }
        if let line = Self.metricsLine(data, to: to) { printOut(line) }
    }
}
