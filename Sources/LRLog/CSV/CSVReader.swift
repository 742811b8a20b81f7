import Foundation

/// A CSV file of metrics: its header, row count, and one series per numeric column.
public struct CSVTable: Sendable {
    public var path: String
    /// Column names of the header row, as written (unquoted).
    public var header: [String]
    /// Data rows (not counting the header), including rows that were skipped as bad.
    public var rowCount: Int
    /// The column used as the step: "step", "global_step", "iteration" or "iter" (any case); nil when there is
    /// none, and the rows are numbered 0, 1, 2... instead (with a warning saying so).
    public var stepColumn: String?
    /// One series per other column that has at least one number, in column order. Empty cells are
    /// simply absent (Lightning's CSVLogger writes the LR and the loss of a step on different rows).
    public var scalars: [ScalarSeries]
    public var warnings: [String]
}

/// Reads metric CSV files: Lightning `CSVLogger` metrics.csv (sparse rows, empty cells) and any CSV
/// with a step column (`step`, `global_step`, `iteration`, `iter`; else rows are numbered) and numeric columns. RFC 4180 quoting (quoted
/// fields, `""` escapes, newlines inside quotes); `NaN`/`nan`/`inf`/`-inf`/`Infinity` read as such.
/// Bad rows are reported by line and skipped.
public enum CSVReader {
    public static func read(at url: URL) throws -> CSVTable {
        let path = url.path
        let file = try ChunkedFile(path: path, chunkSize: 1 << 20)
        var state = CSVState(path: path)
        while try file.readMore() {
            let used = state.feed(file.pointer, file.available, final: false)
            file.consume(used)
        }
        _ = state.feed(file.pointer, file.available, final: true)
        if state.header == nil { state.warnings.add("\(path): empty file") }
        return CSVTable(path: path, header: state.header ?? [], rowCount: state.rows,
                        stepColumn: state.stepIndex.flatMap { state.header?[$0] },
                        scalars: state.series.compactMap { $0 }.filter { $0.count > 0 },
                        warnings: state.warnings.finished(file: path))
    }

    /// The file as a run, with tags mapped by `TagMapping.guess` unless `mapping` is given.
    public static func readRun(at url: URL, name: String? = nil, mapping: TagMapping? = nil) throws -> RunData {
        let table = try read(at: url)
        var run = RunData(name: name ?? url.deletingPathExtension().lastPathComponent, source: url.path, format: .csv)
        run.scalars = table.scalars
        run.warnings = table.warnings
        run.applyMapping(mapping ?? TagMapping.guess(tags: run.tags))
        return run
    }
}

struct CSVState {
    let path: String
    var header: [String]?
    var stepIndex: Int?
    var series: [ScalarSeries?] = []
    var rows = 0
    var warnings = WarningList()
    /// Physical line at which the next record starts.
    var line = 1
    private var warnedColumns = Set<Int>()
    // Field boundaries of the record being split: (start, end, quoted).
    private var fields: [(Int, Int, Bool)] = []

    init(path: String) { self.path = path }

    /// Handles every complete record in the bytes; returns the bytes used. With `final`, the rest too.
    mutating func feed(_ base: UnsafePointer<UInt8>, _ count: Int, final: Bool) -> Int {
        var i = 0
        while i < count {
            // Find the end of the record: a newline outside quotes.
            var j = i
            var inQuotes = false
            var newlines = 0
            var end = -1
            while j < count {
                let c = base[j]
                if c == UInt8(ascii: "\"") { inQuotes.toggle() }
                else if c == 10 {
                    if !inQuotes { end = j; break }
                    newlines += 1
                }
                j += 1
            }
            if end < 0 {
                guard final else { return i }
                end = count
            }
            record(base + i, end - i, terminated: end < count)
            line += newlines + 1
            i = end + 1
        }
        return min(i, count)
    }

    private mutating func split(_ p: UnsafePointer<UInt8>, _ n: Int) {
        fields.removeAll(keepingCapacity: true)
        var e = n
        if e > 0, p[e - 1] == 13 { e -= 1 }
        var i = 0
        while true {
            if i < e, p[i] == UInt8(ascii: "\"") {
                let s = i + 1
                var j = s
                while j < e {
                    if p[j] == UInt8(ascii: "\"") {
                        if j + 1 < e, p[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                fields.append((s, min(j, e), true))
                i = j + 1
                while i < e, p[i] != UInt8(ascii: ",") { i += 1 }
            } else {
                let s = i
                while i < e, p[i] != UInt8(ascii: ",") { i += 1 }
                fields.append((s, i, false))
            }
            if i >= e { break }
            i += 1  // the comma
            if i == e { fields.append((e, e, false)); break }
        }
    }

    private func text(_ p: UnsafePointer<UInt8>, _ f: (Int, Int, Bool)) -> String {
        let raw = String(decoding: UnsafeBufferPointer(start: p + f.0, count: f.1 - f.0), as: UTF8.self)
        return f.2 ? raw.replacingOccurrences(of: "\"\"", with: "\"") : raw.trimmingCharacters(in: .whitespaces)
    }

    private func number(_ p: UnsafePointer<UInt8>, _ f: (Int, Int, Bool)) -> Double? {
        NumberParser.parseCell(p + f.0, p + f.1)
    }

    private func isEmpty(_ p: UnsafePointer<UInt8>, _ f: (Int, Int, Bool)) -> Bool {
        for k in f.0..<f.1 where p[k] != 32 && p[k] != 9 { return false }
        return true
    }

    private mutating func record(_ p: UnsafePointer<UInt8>, _ n: Int, terminated: Bool) {
        var blank = true
        for k in 0..<n where p[k] != 32 && p[k] != 9 && p[k] != 13 { blank = false; break }
        if blank { return }
        split(p, n)
        guard let header else {
            let names = fields.map { text(p, $0) }
            self.header = names
            let stepNames = ["step", "global_step", "iteration", "iter"]
            let step = stepNames.lazy.compactMap { name in names.firstIndex { $0.lowercased() == name } }.first
            stepIndex = step
            if step == nil {
                warnings.add("\(path): no step column (step, global_step, iteration or iter): rows are numbered as steps 0, 1, 2...")
            }
            series = names.enumerated().map { $0.offset == step ? nil : ScalarSeries(tag: $0.element) }
            return
        }
        rows += 1
        guard fields.count == header.count else {
            if !terminated {
                warnings.add("\(path):\(line): truncated last line (the file may still be being written)")
            } else {
                warnings.add("\(path):\(line): \(fields.count) fields where the header has \(header.count), row skipped")
            }
            return
        }
        let step: Int
        if let stepIndex {
            let stepField = fields[stepIndex]
            let range = RunLogLine.stepRange
            guard let stepValue = number(p, stepField), stepValue.isFinite, stepValue == stepValue.rounded() else {
                let shown = isEmpty(p, stepField) ? "empty" : "\"\(text(p, stepField))\""
                warnings.add("\(path):\(line): step (column \"\(header[stepIndex])\") is \(shown), not an integer; row skipped")
                return
            }
            guard stepValue >= Double(range.lowerBound), stepValue <= Double(range.upperBound) else {
                warnings.add("\(path):\(line): step \(text(p, stepField)) is outside 0...2^53; row skipped")
                return
            }
            step = Int(stepValue)
        } else {
            step = rows - 1
        }
        for c in fields.indices where c != stepIndex {
            let f = fields[c]
            if isEmpty(p, f) { continue }
            if let v = number(p, f) {
                series[c]!.steps.append(step)
                series[c]!.values.append(v)
            } else if !warnedColumns.contains(c) {
                warnedColumns.insert(c)
                warnings.add("\(path):\(line): column \"\(header[c])\": \"\(text(p, f))\" is not a number (such cells are ignored)")
            }
        }
    }
}
