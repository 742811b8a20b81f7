import Foundation

/// Writes a TensorBoard event file: a `file_version` "brain.Event:2" event, then scalar summaries
/// (`simple_value`), each record framed with masked CRC-32C. Buffered; `close()` (or deinit) flushes.
/// Not thread-safe.
public final class TensorBoardWriter {
    public let url: URL
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var event: [UInt8] = []
    private var summary: [UInt8] = []

    /// The usual file name: `events.out.tfevents.<unix seconds>.<host>.<pid>.0`.
    public static func defaultFileName(wallTime: Double) -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "events.out.tfevents.\(Int(wallTime)).\(host.isEmpty ? "localhost" : host).\(getpid()).0"
    }

    /// Creates the file (and parent folders) and writes the `file_version` event stamped `wallTime`
    /// (Unix seconds).
    public init(url: URL, wallTime: Double) throws {
        self.url = url
        try SafeFiles.prepareFolder(url.deletingLastPathComponent(), what: "the export's folder",
                                    instead: "choose another output folder", sharedAllowed: true)
        fd = try SafeFiles.open(url, .truncate, what: "the TensorBoard export")
        buffer.reserveCapacity(1 << 20)
        event.appendKey(field: 1, wire: 1)
        event.appendLittleEndian(wallTime.bitPattern)
        let version = Array("brain.Event:2".utf8)
        event.appendKey(field: 3, wire: 2)
        event.appendVarint(UInt64(version.count))
        event += version
        try appendRecord()
    }

    deinit { try? close() }

    /// One event holding a scalar for each tag.
    public func addScalars(_ values: [(tag: String, value: Float)], step: Int, wallTime: Double) throws {
        summary.removeAll(keepingCapacity: true)
        for (tag, value) in values {
            let tagBytes = tag.utf8.count
            // Value: tag 1 (string), simple_value 2 (fixed32).
            let valueLength = 1 + varintSize(UInt64(tagBytes)) + tagBytes + 5
            summary.appendKey(field: 1, wire: 2)
            summary.appendVarint(UInt64(valueLength))
            summary.appendKey(field: 1, wire: 2)
            summary.appendVarint(UInt64(tagBytes))
            summary.append(contentsOf: tag.utf8)
            summary.appendKey(field: 2, wire: 5)
            summary.appendLittleEndian(value.bitPattern)
        }
        event.removeAll(keepingCapacity: true)
        event.appendKey(field: 1, wire: 1)
        event.appendLittleEndian(wallTime.bitPattern)
        if step != 0 {
            event.appendKey(field: 2, wire: 0)
            event.appendVarint(UInt64(bitPattern: Int64(step)))
        }
        event.appendKey(field: 5, wire: 2)
        event.appendVarint(UInt64(summary.count))
        event += summary
        try appendRecord()
    }

    public func addScalar(tag: String, value: Float, step: Int, wallTime: Double) throws {
        try addScalars([(tag, value)], step: step, wallTime: wallTime)
    }

    private func varintSize(_ v: UInt64) -> Int {
        var n = 1, v = v
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    /// Frames `event` as a TFRecord: length, masked CRC of length, data, masked CRC of data.
    private func appendRecord() throws {
        let length = UInt64(event.count)
        let start = buffer.count
        buffer.appendLittleEndian(length)
        let lengthCRC = buffer.withUnsafeBytes { CRC32C.masked(CRC32C.checksum($0.baseAddress! + start, 8)) }
        buffer.appendLittleEndian(lengthCRC)
        buffer += event
        buffer.appendLittleEndian(CRC32C.masked(CRC32C.checksum(event)))
        if buffer.count >= 1 << 20 { try flush() }
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        guard fd >= 0 else { throw LogError("\(url.path): write after close") }
        try writeAll(buffer, to: fd, path: url.path)
        buffer.removeAll(keepingCapacity: true)
    }

    public func close() throws {
        guard fd >= 0 else { return }
        defer { Glibc.close(fd); fd = -1 }
        try flush()
    }
}

@available(*, unavailable, message: "TensorBoardWriter buffers without locks; use it from one thread")
extension TensorBoardWriter: Sendable {}

/// `lrtop export --to tensorboard`.
public enum TensorBoardExport {
    /// Writes the run's scalars as an event file: `train/loss`, `train/lr` (the first group) and, with
    /// several groups, `train/lr/<group>`, `train/grad_norm`, `train/samples_per_sec`, `val/loss`,
    /// `val/acc`, and every metric under its own name (`RunData.metricNames`; one named like a built-in tag gets a
    /// `_metric` suffix). NaN losses are written (they are what happened); other NaNs mean "not logged" and are
    /// left out, as are columns with no value at all. `url` is a folder (a file with the default name is
    /// created inside) or a file path. Returns the file written.
    @discardableResult
    public static func write(_ run: RunData, to url: URL) throws -> URL {
        let start = run.startUnixTime ?? 0
        var isDir: ObjCBool = false
        let isFolder = url.hasDirectoryPath
            || (FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue)
            || !TensorBoardReader.isEventFileName(url.lastPathComponent)
        let fileURL = isFolder ? url.appendingPathComponent(TensorBoardWriter.defaultFileName(wallTime: start)) : url
        let writer = try TensorBoardWriter(url: fileURL, wallTime: start)
        let s = run.steps
        let groups = run.groups.count == s.groupCount ? run.groups : (0..<s.groupCount).map { "group\($0)" }
        var lrTags = s.groupCount > 0 ? ["train/lr"] : []
        if s.groupCount > 1 { lrTags += groups.map { "train/lr/\($0)" } }
        let metricNames = run.metricNames
        let builtInTags = ["train/loss", "train/grad_norm", "train/samples_per_sec", "val/loss", "val/acc"] + lrTags
        let tagOf = Dictionary(uniqueKeysWithValues: zip(metricNames, ExportNames.unique(metricNames, besides: builtInTags)))
        let stepMetricTags = s.metricNames.map { tagOf[$0]! }
        let hasGrad = s.gradNorm.contains { !$0.isNaN }
        let hasSPS = s.samplesPerSec.contains { !$0.isNaN }
        let hasLoss = s.loss.contains { !$0.isNaN } || run.format == .runLog
        let keepNaNLoss = run.format == .runLog
        var values: [(tag: String, value: Float)] = []
        // Evaluations go right after the last step row of their step (before the first later step when
        // their step has no row), so each event's step order matches the run's; so do the values of metric series.
        let evals = run.evals
        var nextEval = 0
        var points: [(step: Int, wallTime: Double, tag: String, value: Double)] = []
        for series in run.metricSeries {
            let tag = tagOf[series.name]!
            for k in series.steps.indices where !series.values[k].isNaN {
                points.append((series.steps[k], series.wallTimes.indices.contains(k) ? series.wallTimes[k] : .nan, tag,
                               series.values[k]))
            }
        }
        points = points.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        var nextPoint = 0
        func writeLater(through step: Int) throws {
            while nextEval < evals.count, evals[nextEval].step <= step {
                let e = evals[nextEval]
                nextEval += 1
                values.removeAll(keepingCapacity: true)
                if !e.loss.isNaN { values.append(("val/loss", Float(e.loss))) }
                if !e.accuracy.isNaN { values.append(("val/acc", Float(e.accuracy))) }
                for m in e.metrics where !m.value.isNaN { values.append((tagOf[m.name]!, Float(m.value))) }
                if !values.isEmpty {
                    try writer.addScalars(values, step: e.step, wallTime: start + (e.wallTime.isNaN ? 0 : e.wallTime))
                }
            }
            // Points of one step share an event (one tag once per event).
            while nextPoint < points.count, points[nextPoint].step <= step {
                let first = points[nextPoint]
                values.removeAll(keepingCapacity: true)
                var tags = Set<String>()
                while nextPoint < points.count, points[nextPoint].step == first.step, tags.insert(points[nextPoint].tag).inserted {
                    values.append((points[nextPoint].tag, Float(points[nextPoint].value)))
                    nextPoint += 1
                }
                try writer.addScalars(values, step: first.step, wallTime: start + (first.wallTime.isNaN ? 0 : first.wallTime))
            }
        }
        for i in 0..<s.count {
            // Imported steps may be any Int64 (a crafted TensorBoard file): no arithmetic that can overflow.
            try writeLater(through: s.step[i] == Int.min ? Int.min : s.step[i] - 1)
            values.removeAll(keepingCapacity: true)
            if hasLoss, keepNaNLoss || !s.loss[i].isNaN { values.append(("train/loss", s.loss[i])) }
            if s.groupCount > 0, !s.lrs[0][i].isNaN { values.append((lrTags[0], Float(s.lrs[0][i]))) }
            if s.groupCount > 1 {
                for g in 0..<s.groupCount where !s.lrs[g][i].isNaN { values.append((lrTags[1 + g], Float(s.lrs[g][i]))) }
            }
            if hasGrad, !s.gradNorm[i].isNaN { values.append(("train/grad_norm", s.gradNorm[i])) }
            if hasSPS, !s.samplesPerSec[i].isNaN { values.append(("train/samples_per_sec", s.samplesPerSec[i])) }
            for m in s.metrics.indices where !s.metrics[m][i].isNaN { values.append((stepMetricTags[m], s.metrics[m][i])) }
            if !values.isEmpty {
                let w = s.wallTime[i]
                try writer.addScalars(values, step: s.step[i], wallTime: start + (w.isNaN ? 0 : w))
            }
        }
        try writeLater(through: .max)
        try writer.close()
        return fileURL
    }
}
