import Foundation

/// Follows a run log that is still being written (`lrtop watch`): each `poll()` returns the records
/// completed since the last one. A partial last line is held back until its newline arrives. A file
/// that does not exist yet reads as no records; a file that shrank (a new run in its place) is read
/// again from the start.
///
/// Not thread-safe: poll from one thread (the UI loop).
public final class RunLogFollower {
    public let url: URL
    /// Byte offset up to which the file has been consumed (always just after a newline).
    public private(set) var offset = 0
    /// Every warning so far ("file:line: what").
    public private(set) var warnings: [String] = []
    private var feeder: RunLogFeeder

    public init(url: URL) {
        self.url = url
        feeder = RunLogFeeder(path: url.path)
    }

    /// Records completed since the last poll, in file order. Throws when the file is not a run log.
    public func poll() throws -> [RunRecord] {
        var sink = RecordCollector()
        try poll(into: &sink)
        return sink.records
    }

    /// The same, each with the number of the line it came from (the header is line 0), and how many complete lines
    /// the file has been read through: lines below it that hold no record (a malformed one) have no entry.
    public func pollNumbered() throws -> (records: [(line: Int, record: RunRecord)], linesRead: Int) {
        var sink = NumberedRecordCollector()
        try poll(into: &sink)
        return (Array(zip(sink.lines, sink.inner.records)), feeder.line)
    }

    private func poll<S: RunRecordSink>(into sink: inout S) throws {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let reader = try ChunkedFile(path: path, offset: offset, chunkSize: 1 << 20)
        let size = reader.fileSize
        if size < offset {
            warnings.append("\(path): file shrank from \(offset) to \(size) bytes; reading it again from the start")
            offset = 0
            feeder = RunLogFeeder(path: path)
            return try poll(into: &sink)
        }
        if size == offset { return }
        let before = feeder.warnings.lines.count
        while try reader.readMore() {
            let used = try feeder.feed(reader.pointer, reader.available, into: &sink)
            reader.consume(used)
            offset += used
        }
        warnings += feeder.warnings.lines[before...]
    }
}

@available(*, unavailable, message: "RunLogFollower keeps a file position; poll it from one thread")
extension RunLogFollower: Sendable {}
