import Foundation

/// `lrtop export --to csv`: one row per step record with columns
/// `step, epoch, lr (or lr/<group> per group), loss, grad_norm, samples_per_sec, wall_time, val_loss, val_acc`.
/// An evaluation fills the val columns of the (last) row of its step; one whose step has no row gets a
/// row of its own. Empty cells mean "not logged"; NaN is `NaN`, infinities `inf`/`-inf` (pandas reads
/// all three). Numbers use the shortest digits that round-trip.
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
        let columns = ["step", "epoch"] + lrColumns + ["loss", "grad_norm", "samples_per_sec", "wall_time", "val_loss", "val_acc"]
        out.append(contentsOf: columns.map(csvField).joined(separator: ",").utf8)
        out.append(10)

        // Evals by the last row index of their step.
        var lastRow: [Int: Int] = [:]
        lastRow.reserveCapacity(s.count)
        for i in 0..<s.count { lastRow[s.step[i]] = i }
        var evalAtRow: [Int: [EvalRecord]] = [:]
        var orphans: [EvalRecord] = []
        for e in run.evals {
            if let row = lastRow[e.step] { evalAtRow[row, default: []].append(e) } else { orphans.append(e) }
        }
        orphans.sort { $0.step < $1.step }
        var nextOrphan = 0

        // In imports NaN means "not logged": an empty cell. In lrtop logs it is a value (a diverged loss).
        let nanText: StaticString = run.format == .runLog ? "NaN" : ""
        func cell(_ v: Double) {
            out.append(UInt8(ascii: ","))
            if v.isNaN { out.appendASCII(nanText) }
            else if v.isInfinite { if v < 0 { out.appendASCII("-inf") } else { out.appendASCII("inf") } }
            else { out.append(contentsOf: v.description.utf8) }
        }
        func cell(_ v: Float) {
            out.append(UInt8(ascii: ","))
            if v.isNaN { out.appendASCII(nanText) }
            else if v.isInfinite { if v < 0 { out.appendASCII("-inf") } else { out.appendASCII("inf") } }
            else { out.append(contentsOf: v.description.utf8) }
        }
        let empties = lrColumns.count + 4
        func evalRow(_ e: EvalRecord) {
            out.appendInt(e.step); out.append(UInt8(ascii: ",")); out.appendInt(e.epoch)
            for _ in 0..<empties { out.append(UInt8(ascii: ",")) }
            cell(e.loss); cell(e.accuracy)
            out.append(10)
        }

        for i in 0..<s.count {
            while nextOrphan < orphans.count, orphans[nextOrphan].step < s.step[i] {
                evalRow(orphans[nextOrphan]); nextOrphan += 1
            }
            out.appendInt(s.step[i]); out.append(UInt8(ascii: ",")); out.appendInt(Int(s.epoch[i]))
            for g in 0..<s.groupCount { cell(s.lrs[g][i]) }
            cell(s.loss[i]); cell(s.gradNorm[i]); cell(s.samplesPerSec[i]); cell(s.wallTime[i])
            let evals = evalAtRow[i] ?? []
            if let e = evals.first { cell(e.loss); cell(e.accuracy) } else { out.appendASCII(",,") }
            out.append(10)
            for e in evals.dropFirst() { evalRow(e) }
            if out.count >= 1 << 20 { try flush() }
        }
        while nextOrphan < orphans.count { evalRow(orphans[nextOrphan]); nextOrphan += 1 }
        try flush()
    }

    private static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
