import Dispatch
import Foundation

// A large run log read on every core: the file is cut into pieces at line ends, each piece is parsed into columns
// of its own by its own parser, and the pieces are joined in file order. The result is the one a single pass gives:
// the same columns, records, warnings (line numbers counted over the whole file) and errors.

extension RunLogReader {
    /// Logs at least this large are read in pieces (a million steps of 20 metrics is 840 MB; below a few tens of
    /// MB one thread finishes before the others would start).
    static let piecewiseBytes = 48 << 20

    /// The run in `path`, parsed in `pieces` pieces side by side.
    static func readRunInPieces(path: String, run: RunData, size: Int, pieces: Int) throws -> RunData {
        let bounds = try pieceBounds(path: path, size: size, pieces: pieces)
        let results = PieceResults(count: bounds.count - 1)
        DispatchQueue.concurrentPerform(iterations: bounds.count - 1) { i in
            do {
                results.set(i, .success(try readPiece(path: path, from: bounds[i], to: bounds[i + 1], first: i == 0,
                                                      last: i == bounds.count - 2, run: run)))
            } catch {
                results.set(i, .failure(error))
            }
        }
        // The first piece's error is the file's (a first line that is not a header); later pieces throw only on read errors.
        var parts: [Piece] = []
        for r in results.all { parts.append(try r.get()) }
        var joined = parts[0].run
        joined.steps.reserveCapacity(parts.reduce(0) { $0 + $1.run.steps.count }, groups: max(1, joined.groups.count))
        var warnings = WarningList()
        var lineOffset = 0
        for (k, part) in parts.enumerated() {
            if k > 0 { joined.join(part.run) }
            for w in part.warnings.lines { warnings.add(renumber(w, path: path, by: lineOffset)) }
            warnings.addSuppressed(part.warnings.suppressed)
            lineOffset += part.lines
        }
        var sink = RunDataSink(run: joined)
        sink.finish()
        sink.run.warnings = warnings.finished(file: path)
        return sink.run
    }

    /// One piece's columns, warnings (line numbers counted from the piece's start) and line count.
    struct Piece: Sendable {
        var run: RunData
        var warnings: WarningList
        var lines: Int
    }

    /// Parses bytes `from ..< to` (whole lines) of the log. The first piece checks the header; the last takes a final
    /// line without its newline.
    static func readPiece(path: String, from: Int, to: Int, first: Bool, last: Bool, run: RunData) throws -> Piece {
        let file = try ChunkedFile(path: path, offset: from, limit: to)
        var sink = RunDataSink(run: run)
        var feeder = RunLogFeeder(path: path)
        feeder.sawFirstLine = !first
        try feed(file, bytes: to - from, &feeder, into: &sink)
        if last { try feeder.finish(file.pointer, file.available, into: &sink) }
        return Piece(run: sink.run, warnings: feeder.warnings, lines: feeder.line)
    }

    /// Offsets that cut the file into about `pieces` pieces, each just after a newline: 0, ..., size.
    static func pieceBounds(path: String, size: Int, pieces: Int) throws -> [Int] {
        var bounds = [0]
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw LogError("\(path): cannot open: \(errnoText())") }
        defer { close(fd) }
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        for k in 1..<pieces {
            var at = max(size * k / pieces, bounds.last!)
            var found = false
            while at < size, !found {
                let n = scratch.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(at)) }
                if n <= 0 { break }
                if let nl = scratch[0..<n].firstIndex(of: 10) { at += nl + 1; found = true } else { at += n }
            }
            if found, at < size, at > bounds.last! { bounds.append(at) }
        }
        bounds.append(size)
        return bounds
    }

    /// "FILE:12: what" with its line number moved by `offset`; other warnings as they are.
    static func renumber(_ warning: String, path: String, by offset: Int) -> String {
        guard offset > 0, warning.hasPrefix(path + ":") else { return warning }
        let rest = warning.dropFirst(path.count + 1)
        guard let colon = rest.firstIndex(of: ":"), let line = Int(rest[..<colon]) else { return warning }
        return "\(path):\(line + offset)" + rest[colon...]
    }
}

/// Each piece's result, written by one thread each.
private final class PieceResults: @unchecked Sendable {
    private var results: [Result<RunLogReader.Piece, any Error>?]
    private let lock = NSLock()

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<RunLogReader.Piece, any Error>) {
        lock.lock(); defer { lock.unlock() }
        results[i] = r
    }

    var all: [Result<RunLogReader.Piece, any Error>] {
        lock.lock(); defer { lock.unlock() }
        return results.map { $0! }
    }
}

extension RunData {
    /// Appends a later piece of the same log: its step rows, evaluations, metrics, events and end.
    mutating func join(_ later: RunData) {
        steps.append(contentsOf: later.steps)
        evals += later.evals
        events += later.events
        for s in later.metricSeries {
            if let i = metricSeries.firstIndex(where: { $0.name == s.name }) {
                metricSeries[i].steps += s.steps
                metricSeries[i].values += s.values
                metricSeries[i].wallTimes += s.wallTimes
            } else {
                metricSeries.append(s)
            }
        }
        if let e = later.end { end = e }
        if header == nil, let h = later.header { adopt(h) }
    }
}

extension StepColumns {
    /// Appends the rows of `other` (metric columns matched by name; NaN where one side lacks a column).
    mutating func append(contentsOf other: StepColumns) {
        appendMetrics(of: other)
        ensureGroups(other.groupCount)
        step += other.step
        epoch += other.epoch
        loss += other.loss
        gradNorm += other.gradNorm
        samplesPerSec += other.samplesPerSec
        wallTime += other.wallTime
        for g in lrs.indices {
            if g < other.groupCount { lrs[g] += other.lrs[g] } else { lrs[g] += repeatElement(.nan, count: other.count) }
        }
    }
}
