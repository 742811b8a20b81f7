import Foundation

/// The records of a run log and the problems met reading it.
public struct RunLogContents: Sendable {
    public var records: [RunRecord]
    /// One line each: "file:line: what".
    public var warnings: [String]
}

/// Reads whole run logs (JSON Lines, docs/runlog.md).
///
/// Tolerant of what a live or crashed run leaves behind: a truncated last line is dropped with a warning,
/// a garbage line or an unknown record type is skipped with a warning naming its line, and an empty file
/// is an empty run. Only a file whose first line is complete and not a header record is an error:
/// "FILE: not an lrtop run log (first line is not a header record)".
public enum RunLogReader {
    /// All records, in file order.
    public static func readRecords(at url: URL) throws -> RunLogContents {
        var sink = RecordCollector()
        let warnings = try read(path: url.path, into: &sink)
        return RunLogContents(records: sink.records, warnings: warnings)
    }

    /// The run as columns (the fast path for replay: no per-step records are built).
    /// `pieces`: read in that many pieces side by side; nil: in pieces on every core (up to 8) when the file is at
    /// least `piecewiseBytes`, else in one pass.
    public static func readRun(at url: URL, name: String? = nil, pieces: Int? = nil) throws -> RunData {
        let empty = RunData(name: name ?? url.deletingPathExtension().lastPathComponent, source: url.path, format: .runLog)
        // A large log is read in pieces on every core (RunLogPieces.swift).
        var st = stat()
        if stat(url.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            let size = Int(st.st_size)
            let auto = size >= piecewiseBytes ? min(ProcessInfo.processInfo.activeProcessorCount, 8) : 1
            if let n = pieces ?? (auto > 1 ? auto : nil), n > 1, size > 0 {
                return try readRunInPieces(path: url.path, run: empty, size: size, pieces: n)
            }
        }
        var sink = RunDataSink(run: empty)
        let warnings = try read(path: url.path, into: &sink)
        sink.finish()
        sink.run.warnings = warnings
        return sink.run
    }

    /// Whether the file starts like a run log (its first line begins with a header record's type).
    public static func looksLikeRunLog(at url: URL) -> Bool {
        guard let file = try? ChunkedFile(path: url.path, chunkSize: 4096), (try? file.readMore()) == true else { return false }
        let head = String(decoding: UnsafeBufferPointer(start: file.pointer, count: min(file.available, 200)), as: UTF8.self)
        let compact = head.filter { !$0.isWhitespace }
        return compact.hasPrefix("{\"type\":\"header\"") || (compact.hasPrefix("{") && compact.contains("\"schema\":"))
    }

    static func read<S: RunRecordSink>(path: String, into sink: inout S) throws -> [String] {
        let file = try ChunkedFile(path: path)
        var feeder = RunLogFeeder(path: path)
        try feed(file, bytes: file.fileSize, &feeder, into: &sink)
        try feeder.finish(file.pointer, file.available, into: &sink)
        return feeder.warnings.finished(file: path)
    }

    /// Feeds every complete line of `file` (`bytes` long) to the sink, reserving its columns once from the first
    /// chunk's lines per byte, so they grow once.
    static func feed<S: RunRecordSink>(_ file: ChunkedFile, bytes: Int, _ feeder: inout RunLogFeeder, into sink: inout S) throws {
        var reserved = false
        while try file.readMore() {
            if !reserved {
                reserved = true
                let head = UnsafeBufferPointer(start: file.pointer, count: file.available)
                let newlines = head.reduce(0) { $1 == 10 ? $0 + 1 : $0 }
                if newlines > 8, bytes > 0 {
                    sink.reserve(lines: Int(Double(bytes) / Double(head.count) * Double(newlines) * 1.02) + 16)
                }
            }
            let used = try feeder.feed(file.pointer, file.available, into: &sink)
            file.consume(used)
        }
    }
}

/// Turns bytes into lines for the parser, numbering lines, checking the first one is a header, and
/// writing the warnings. Shared by the reader (whole files) and the follower (growing files).
struct RunLogFeeder {
    let path: String
    let parser = RunLogLineParser()
    /// Lines seen so far.
    var line = 0
    var sawFirstLine = false
    var warnings = WarningList()

    init(path: String) { self.path = path }

    /// Handles every complete line in `p ..< p + count`; returns the bytes used (through the last newline).
    mutating func feed<S: RunRecordSink>(_ p: UnsafePointer<UInt8>, _ count: Int, into sink: inout S) throws -> Int {
        var start = p
        let end = p + count
        while start < end {
            guard let nl = memchr(start, 10, end - start) else { break }
            let lineEnd = nl.assumingMemoryBound(to: UInt8.self)
            try handle(start, UnsafePointer(lineEnd), terminated: true, into: &sink)
            start = UnsafePointer(lineEnd) + 1
        }
        return start - p
    }

    /// Handles the last line of a file that does not end with a newline.
    mutating func finish<S: RunRecordSink>(_ p: UnsafePointer<UInt8>, _ count: Int, into sink: inout S) throws {
        if count > 0 { try handle(p, p + count, terminated: false, into: &sink) }
        if !sawFirstLine { warnings.add("\(path): empty run log") }
    }

    private mutating func handle<S: RunRecordSink>(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, terminated: Bool,
                                                  into sink: inout S) throws {
        sink.beginLine(line)
        line += 1
        let outcome = parser.parse(s, e, into: &sink)
        if let note = parser.lineNote { warnings.add("\(path):\(line): \(note)") }
        if !sawFirstLine {
            if outcome == .blank { return }
            sawFirstLine = true
            if outcome == .record, parser.lastType == "header" { return }
            if !terminated, case .invalid = outcome, Self.startsLikeHeader(s, e) {
                warnings.add("\(path):\(line): truncated last line (the run may still be writing)")
                return
            }
            throw LogError("\(path): not an lrtop run log (first line is not a header record)")
        }
        switch outcome {
        case .record, .blank: break
        case let .unknownType(type):
            warnings.add("\(path):\(line): unknown record type \"\(type)\", skipped")
        case let .invalid(what):
            if terminated {
                warnings.add("\(path):\(line): \(what), skipped")
            } else {
                warnings.add("\(path):\(line): truncated last line (the run may still be writing)")
            }
        }
    }

    /// A cut-off first line that could be the start of a header: `{"type":"header"...` or a prefix of it.
    private static func startsLikeHeader(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Bool {
        let expected = Array("{\"type\":\"header\"".utf8)
        var compact: [UInt8] = []
        var p = s
        while p < e, compact.count < expected.count {
            if p.pointee != 32, p.pointee != 9 { compact.append(p.pointee) }
            p += 1
        }
        return !compact.isEmpty && expected.starts(with: compact)
    }
}
