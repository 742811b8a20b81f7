import Foundation

/// Writes a run log (JSON Lines, docs/runlog.md) for the trainer.
///
/// Lines go into an in-memory buffer that reaches the file when a write finds the last flush older than
/// `flushInterval` (1 s), when the buffer passes 1 MiB, and on `flush()` / `close()`. A `kill -9` thus
/// loses at most the last second; `flush()` hands bytes to the kernel (`write(2)`), which survives a
/// killed process but not a power cut (no fsync, deliberately: it would stall the training loop).
///
/// Writing a step formats its numbers by hand into the reusable buffer: about a microsecond, no
/// Foundation. Use from one thread (the trainer's): the writer is not Sendable.
///
///     let log = try RunLogWriter(url: runDir.appendingPathComponent("run.jsonl"))
///     try log.write(.header(header))
///     try log.write(step: record)        // each step
///     try log.close()
public final class RunLogWriter {
    public let url: URL
    public let flushInterval: Double
    /// Bytes handed to the file so far.
    public private(set) var bytesWritten = 0
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var lastFlush: Double
    private static let bufferLimit = 1 << 20
    /// Where each line is copied as it is written (the control socket pushes them to viewers); nil: nowhere.
    public var tap: LogLineRing? = nil
    /// Where the line being written starts in `buffer`.
    private var lineStart = 0

    /// Opens (creating parent folders) `url` for writing, as `SafeFiles` opens every file: never through a link,
    /// in a folder of this user's that nobody else can write. `append: false` starts the file empty;
    /// `append: true` continues an existing log (a resumed run).
    public init(url: URL, append: Bool = false, flushInterval: Double = 1.0) throws {
        self.url = url
        self.flushInterval = flushInterval
        // A run folder is checked more strictly by `RunDirectory.prepare`; a log alone may sit in a sticky /tmp.
        try SafeFiles.prepareFolder(url.deletingLastPathComponent(), what: "the log's folder",
                                    instead: "choose another --log or --run-dir", sharedAllowed: true)
        fd = try SafeFiles.open(url, append ? .append : .truncate, what: "the run log")
        buffer.reserveCapacity(64 << 10)
        lastFlush = monotonicSeconds()
    }

    deinit { try? close() }

    public var isOpen: Bool { fd >= 0 }

    public func write(_ record: RunRecord) throws {
        lineStart = buffer.count
        RunLogLine.append(record, to: &buffer)
        try endLine()
    }

    /// The hot path: one step line.
    public func write(step: StepRecord) throws {
        lineStart = buffer.count
        RunLogLine.appendStep(step, to: &buffer)
        try endLine()
    }

    public func write(header: RunHeader) throws { try write(.header(header)) }
    public func write(eval: EvalRecord) throws { try write(.eval(eval)) }
    public func write(event: EventRecord) throws { try write(.event(event)) }
    /// Writes the end record and flushes.
    public func write(end: EndRecord) throws {
        try write(.end(end))
        try flush()
    }

    @inline(__always)
    private func endLine() throws {
        guard fd >= 0 else {
            buffer.removeAll()
            throw LogError("\(url.path): write after close")
        }
        tap?.append(buffer[min(lineStart, buffer.count)...])
        buffer.append(10)
        if buffer.count >= Self.bufferLimit || monotonicSeconds() - lastFlush >= flushInterval { try flush() }
    }

    /// Hands everything buffered to the file. The trainer calls it on pause, stop and signals.
    public func flush() throws {
        lastFlush = monotonicSeconds()
        guard !buffer.isEmpty else { return }
        guard fd >= 0 else { throw LogError("\(url.path): write after close") }
        let total = buffer.count
        try writeAll(buffer, to: fd, path: url.path)
        bytesWritten += total
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes. Later writes throw; closing twice is harmless.
    public func close() throws {
        guard fd >= 0 else { return }
        defer { Glibc.close(fd); fd = -1 }
        try flush()
    }
}

@available(*, unavailable, message: "RunLogWriter buffers without locks; use it from the trainer thread only")
extension RunLogWriter: Sendable {}
