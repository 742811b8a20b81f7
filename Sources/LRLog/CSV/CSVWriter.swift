import Foundation

/// `lrtop export --to csv`: one row per step record with columns
/// `step, epoch, lr (or lr/<group> per group), loss, grad_norm, samples_per_sec, wall_time, val_loss, val_acc`, then
/// one column per metric (`RunData.metricNames`; a metric named like one of those columns gets a `_metric` suffix).
/// An evaluation fills the val columns (and its metrics) of the (last) row of its step, as does a value of a metric
/// series; one whose step has no row, or whose cells that row already holds, gets a row of its own. Empty cells
/// mean "not logged"; NaN is `NaN`, infinities `inf`/`-inf` (pandas reads all three). A metric's NaN is written
/// empty: in the UI and in `RunData` a NaN metric is a gap, the same as one not logged. Numbers use the shortest
/// digits that round-trip.
public enum CSVExport {
    public static func write(_ run: RunData, to url: URL) throws {
        try SafeFiles.prepareFolder(url.deletingLastPathComponent(), what: "the export's folder",
                                    instead: "choose another output path", sharedAllowed: true)
        let fd = try SafeFiles.open(url, .truncate, what: "the CSV export")
        defer { close(fd) }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        func flush() throws {
            try writeAll(out, to: fd, path: url.path)
            out.removeAll(keepingCapacity: true)
        }

        let s = run.steps
        let groups = run.groups.count == s.groupCount ? run.groups : (0..<s.groupCount).map { "group\($0)" }
        let lrColumns = s.groupCount == 1 ? ["lr"] : groups.map { "lr/\($0)" }
        let builtIn = ["step", "epoch"] + lrColumns + ["loss", "grad_norm", "samples_per_sec", "wall_time"]
        let metricNames = run.metricNames
        let metricColumns = ExportNames.unique(metricNames, besides: builtIn + ["val_loss", "val_acc"])
        out.append(contentsOf: (builtIn + ["val_loss", "val_acc"] + metricColumns).map(csvField).joined(separator: ",").utf8)
        out.append(10)

        // The cells after the built-in ones ("extras": val_loss, val_acc, then the metrics), by extra column.
        let extraCount = 2 + metricNames.count
        let metricColumn = Dictionary(uniqueKeysWithValues: metricNames.enumerated().map { ($1, 2 + $0) })
        let stepMetricColumn = s.metricNames.map { metricColumn[$0]! }
        // Evaluations and metric series values, each a set of cells, placed at the last row of their step.
        var lastRow: [Int: Int] = [:]
        lastRow.reserveCapacity(s.count)
        for i in 0..<s.count { lastRow[s.step[i]] = i }
        var setsAtRow: [Int: [CellSet]] = [:]
        var orphans: [(step: Int, epoch: Int, cells: CellSet)] = []
        func place(step: Int, epoch: Int, _ cells: CellSet) {
            if let row = lastRow[step] { setsAtRow[row, default: []].append(cells) } else { orphans.append((step, epoch, cells)) }
        }
        for e in run.evals {
            var cells: CellSet = [(0, e.loss, true), (1, e.accuracy, true)]
            for m in e.metrics where !m.value.isNaN { cells.append((metricColumn[m.name]!, m.value, false)) }
            place(step: e.step, epoch: e.epoch, cells)
        }
        for series in run.metricSeries {
            let c = metricColumn[series.name]!
            for k in series.steps.indices where !series.values[k].isNaN {
                place(step: series.steps[k], epoch: s.lastIndex(ofStep: series.steps[k]).map { Int(s.epoch[$0]) } ?? 0,
                      [(c, series.values[k], false)])
            }
        }
        // Stable: cells of one step keep file order.
        orphans = orphans.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        var nextOrphan = 0

        // In imports NaN means "not logged": an empty cell. In lrtop logs it is a value (a diverged loss).
        let nanText: StaticString = run.format == .runLog ? "NaN" : ""
        func number(_ v: Double, nan: StaticString) {
            if v.isNaN { out.appendASCII(nan) }
            else if v.isInfinite { if v < 0 { out.appendASCII("-inf") } else { out.appendASCII("inf") } }
            else { out.append(contentsOf: v.description.utf8) }
        }
        func cell(_ v: Double) { out.append(UInt8(ascii: ",")); number(v, nan: nanText) }
        func cell(_ v: Float) {
            out.append(UInt8(ascii: ","))
            if v.isNaN { out.appendASCII(nanText) }
            else if v.isInfinite { if v < 0 { out.appendASCII("-inf") } else { out.appendASCII("inf") } }
            else { out.append(contentsOf: v.description.utf8) }
        }
        var extras = [Double?](repeating: nil, count: extraCount)
        var keepNaN = [Bool](repeating: false, count: extraCount)
        func writeExtras() {
            for c in 0..<extraCount {
                out.append(UInt8(ascii: ","))
                if let v = extras[c] { number(v, nan: keepNaN[c] ? nanText : "") }
                extras[c] = nil
                keepNaN[c] = false
            }
        }
        /// Puts a set's cells into `extras` if none is taken; false (nothing changed) otherwise.
        func merge(_ cells: CellSet) -> Bool {
            guard cells.allSatisfy({ extras[$0.column] == nil }) else { return false }
            for c in cells { extras[c.column] = c.value; keepNaN[c.column] = c.keepNaN }
            return true
        }
        let empties = builtIn.count - 2
        /// Rows of their own for cell sets: step, epoch, empty built-ins, the extras; sets merge while they can.
        func extraRows(step: Int, epoch: Int, _ sets: ArraySlice<CellSet>) {
            var pending = false
            for set in sets {
                if !merge(set) {
                    writeRowStart(step, epoch); writeExtras(); out.append(10)
                    _ = merge(set)
                }
                pending = true
            }
            if pending { writeRowStart(step, epoch); writeExtras(); out.append(10) }
        }
        func writeRowStart(_ step: Int, _ epoch: Int) {
            out.appendInt(step); out.append(UInt8(ascii: ",")); out.appendInt(epoch)
            for _ in 0..<empties { out.append(UInt8(ascii: ",")) }
        }
        func writeOrphans(before step: Int) {
            while nextOrphan < orphans.count, orphans[nextOrphan].step < step {
                let first = orphans[nextOrphan]
                var end = nextOrphan + 1
                while end < orphans.count, orphans[end].step == first.step { end += 1 }
                extraRows(step: first.step, epoch: first.epoch, orphans[nextOrphan..<end].map(\.cells)[...])
                nextOrphan = end
            }
        }

        for i in 0..<s.count {
            writeOrphans(before: s.step[i])
            out.appendInt(s.step[i]); out.append(UInt8(ascii: ",")); out.appendInt(Int(s.epoch[i]))
            for g in 0..<s.groupCount { cell(s.lrs[g][i]) }
            cell(s.loss[i]); cell(s.gradNorm[i]); cell(s.samplesPerSec[i]); cell(s.wallTime[i])
            for m in s.metrics.indices where !s.metrics[m][i].isNaN {
                extras[stepMetricColumn[m]] = Double(s.metrics[m][i])
            }
            let sets = setsAtRow[i] ?? []
            var k = 0
            while k < sets.count, merge(sets[k]) { k += 1 }
            writeExtras()
            out.append(10)
            if k < sets.count { extraRows(step: s.step[i], epoch: Int(s.epoch[i]), sets[k...]) }
            if out.count >= 1 << 20 { try flush() }
        }
        writeOrphans(before: .max)
        while nextOrphan < orphans.count {  // an orphan at step Int.max
            extraRows(step: orphans[nextOrphan].step, epoch: orphans[nextOrphan].epoch, [orphans[nextOrphan].cells])
            nextOrphan += 1
        }
        try flush()
    }

    /// Cells of the extra columns: (column, value, whether a NaN is written as NaN rather than left empty).
    typealias CellSet = [(column: Int, value: Double, keepNaN: Bool)]

    private static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// Names of a run's own metrics beside its built-in series, so a metric never shares a column, tag or chart with a
/// built-in one (the exports, `replay --summary --metric` and the metrics grid name them alike).
public enum ExportNames {
    /// `names`, each with `_metric` added (more than once if need be) where it would repeat one of `taken`.
    public static func unique(_ names: [String], besides taken: [String]) -> [String] {
        var used = Set(taken)
        return names.map { name in
            var n = name
            while used.contains(n) { n += "_metric" }
            used.insert(n)
            return n
        }
    }
}
