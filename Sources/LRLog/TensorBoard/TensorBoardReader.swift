import Foundation

/// The scalars of one TensorBoard event file.
public struct TensorBoardFile: Sendable {
    public var path: String
    /// The first event's `file_version` ("brain.Event:2"), if present.
    public var fileVersion: String?
    /// Wall time (Unix seconds) of the first event: when the writer started.
    public var startWallTime: Double?
    /// One series per scalar tag, in order of first appearance.
    public var scalars: [ScalarSeries]
    /// Records read (valid framing and CRC).
    public var recordCount: Int
    /// Summary values that were not scalars (histograms, images, text ...), ignored.
    public var skippedValues: Int
    /// One line per problem: "FILE: record N at byte X: what".
    public var warnings: [String]
}

/// Reads TensorBoard event files (`events.out.tfevents.*`): TFRecord framing with masked CRC-32C, and
/// `Event` protobufs decoded by hand. Scalars come in both encodings: `Summary.Value.simple_value`
/// (TF1, tensorboardX, PyTorch `new_style=False`) and a one-element `tensor` (`float_val`, `double_val`,
/// `half_val`, `int_val`, `int64_val` or `tensor_content`; TF2 and PyTorch `new_style=True`) whose plugin
/// is "scalars" or unnamed.
///
/// A record whose data CRC fails is reported and skipped; a corrupt length is reported and reading
/// resumes at the next valid record; a cut-off tail (a writer still running) is reported.
public enum TensorBoardReader {
    /// Whether a file name is an event file's (`events.out.tfevents.<time>.<host>...`).
    public static func isEventFileName(_ name: String) -> Bool { name.contains("tfevents") }

    /// Reads one event file. `verifyCRC: false` skips the checksums (about 10% faster, and a corrupt
    /// record is then only caught if its protobuf is malformed).
    public static func read(at url: URL, verifyCRC: Bool = true) throws -> TensorBoardFile {
        let decoder = EventDecoder()
        try decoder.read(path: url.path, verifyCRC: verifyCRC)
        return decoder.result(path: url.path)
    }

    /// Reads the event files of one run (one folder: several files are restarts, read in name order)
    /// and maps the tags onto run columns (`TagMapping.guess` unless `mapping` is given).
    public static func readRun(files: [URL], name: String, source: String, mapping: TagMapping? = nil,
                               verifyCRC: Bool = true) throws -> RunData {
        let decoder = EventDecoder()
        for file in files.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
            try decoder.read(path: file.path, verifyCRC: verifyCRC)
        }
        let content = decoder.result(path: source)
        var run = RunData(name: name, source: source, format: .tensorBoard)
        run.scalars = content.scalars
        run.warnings = content.warnings
        run.startUnixTime = content.startWallTime
        run.applyMapping(mapping ?? TagMapping.guess(tags: run.tags))
        return run
    }
}

/// Tag bytes -> series index, open addressing on an FNV-1a hash; no String per record.
struct TagTable {
    private var slots = [Int32](repeating: -1, count: 64)
    private var hashes: [UInt64] = []
    private(set) var keys: [[UInt8]] = []

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x100_0000_01B3 }
        return h
    }

    /// The index of the tag, adding it if new.
    @inline(__always)
    mutating func index(_ p: UnsafePointer<UInt8>, _ n: Int, isNew: inout Bool) -> Int {
        let (found, h, i) = find(p, n)
        if let found { isNew = false; return found }
        isNew = true
        return insert(p, n, hash: h, slot: i)
    }

    /// The index of the tag, or nil when it is not in the table.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? { find(p, n).index }

    /// The tag's index if present; else its hash and the free slot it would take.
    @inline(__always)
    private func find(_ p: UnsafePointer<UInt8>, _ n: Int) -> (index: Int?, hash: UInt64, slot: Int) {
        let h = Self.hash(p, n)
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = Int(slots[i])
            if s < 0 { return (nil, h, i) }
            if hashes[s] == h, keys[s].count == n, keys[s].withUnsafeBufferPointer({ memcmp($0.baseAddress!, p, n) == 0 }) {
                return (s, h, i)
            }
            i = (i + 1) & mask
        }
    }

    /// Adds a tag that `find` did not find, at the slot it gave.
    private mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, slot i: Int) -> Int {
        let index = keys.count
        keys.append(Array(UnsafeBufferPointer(start: p, count: n)))
        hashes.append(h)
        slots[i] = Int32(index)
        if keys.count * 2 > slots.count { rehash() }
        return index
    }

    private mutating func rehash() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        let mask = slots.count - 1
        for (index, h) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(index)
        }
    }
}

final class EventDecoder {
    private var tags = TagTable()
    private var series: [ScalarSeries] = []
    private var warnings = WarningList()
    private var fileVersion: String?
    private var startWallTime: Double?
    private var recordCount = 0
    private var skippedValues = 0
    private var reserved = false
    private var path = ""
    private var recordIndex = 0
    private var recordOffset = 0

    func result(path: String) -> TensorBoardFile {
        TensorBoardFile(path: path, fileVersion: fileVersion, startWallTime: startWallTime, scalars: series, recordCount: recordCount,
                        skippedValues: skippedValues, warnings: warnings.finished(file: path))
    }

    private func warn(_ what: String) {
        warnings.add("\(path): record \(recordIndex) at byte \(recordOffset): \(what)")
    }

    func read(path: String, verifyCRC: Bool) throws {
        self.path = path
        recordIndex = 0
        let file = try ChunkedFile(path: path)
        let size = file.fileSize
        let startRecords = recordCount
        if size == 0 { warnings.add("\(path): empty file"); return }
        while true {
            guard try file.ensure(12) else {
                if file.available > 0 {
                    recordOffset = file.offset
                    warn("truncated record header (\(file.available) bytes at the end; the writer may still be running)")
                }
                break
            }
            recordOffset = file.offset
            let p = UnsafeRawPointer(file.pointer)
            let length = p.loadUnaligned(as: UInt64.self).littleEndian
            let lengthCRC = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
            let lengthOK = !verifyCRC || CRC32C.masked(CRC32C.checksum(p, 8)) == lengthCRC
            if !lengthOK || length > UInt64(Int32.max) {
                let skipped = try resync(file, verifyCRC: verifyCRC)
                warn(lengthOK ? "impossible record length \(length); skipped \(skipped) bytes to the next valid record"
                              : "length checksum mismatch; skipped \(skipped) bytes to the next valid record")
                recordIndex += 1
                if file.available == 0 { break }
                continue
            }
            let n = Int(length)
            guard try file.ensure(16 + n) else {
                warn("truncated record (\(file.available) of \(16 + n) bytes; the writer may still be running)")
                break
            }
            let data = file.pointer + 12
            if verifyCRC {
                let dataCRC = UnsafeRawPointer(data + n).loadUnaligned(as: UInt32.self).littleEndian
                if CRC32C.masked(CRC32C.checksum(data, n)) != dataCRC {
                    warn("data checksum mismatch, record skipped")
                    file.consume(16 + n)
                    recordIndex += 1
                    continue
                }
            }
            if !decodeEvent(data, n) { warn("malformed Event protobuf, record skipped") }
            recordCount += 1
            recordIndex += 1
            file.consume(16 + n)
            if !reserved, file.offset > 1 << 20, size > 4 << 20 { reserve(fraction: Double(file.offset) / Double(size)) }
        }
        if recordIndex > 0, recordCount == startRecords {
            throw LogError("\(path): not a TensorBoard event file (no record with a valid checksum)")
        }
    }

    /// After a corrupt length: the number of bytes skipped to the next offset whose 8 length bytes match
    /// their checksum (everything, when none does).
    private func resync(_ file: ChunkedFile, verifyCRC: Bool) throws -> Int {
        var skipped = 1
        file.consume(1)
        while true {
            guard try file.ensure(12) else {
                let rest = file.available
                file.consume(rest)
                return skipped + rest
            }
            let p = UnsafeRawPointer(file.pointer)
            let length = p.loadUnaligned(as: UInt64.self).littleEndian
            if verifyCRC, length < UInt64(Int32.max),
               CRC32C.masked(CRC32C.checksum(p, 8)) == p.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian {
                return skipped
            }
            file.consume(1)
            skipped += 1
        }
    }

    /// Reserves each series for the whole file, extrapolated from the part read.
    private func reserve(fraction: Double) {
        reserved = true
        guard fraction > 0 else { return }
        for i in series.indices {
            let expected = Int(Double(series[i].count) / fraction * 1.05) + 16
            series[i].steps.reserveCapacity(expected)
            series[i].values.reserveCapacity(expected)
            series[i].wallTimes.reserveCapacity(expected)
        }
    }

    /// Event: wall_time 1 (double), step 2 (int64), file_version 3 (string), summary 5.
    @inline(__always)
    private func decodeEvent(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var r = ProtoReader(p, n)
        var wallTime = Double.nan
        var step = 0
        var summary: (UnsafePointer<UInt8>, Int)?
        while !r.atEnd {
            guard let key = r.varint() else { return false }
            switch key {
            case 1 << 3 | 1:
                guard let bits = r.fixed64() else { return false }
                wallTime = Double(bitPattern: bits)
            case 2 << 3 | 0:
                guard let v = r.varint() else { return false }
                step = Int(Int64(bitPattern: v))
            case 3 << 3 | 2:
                guard let (s, len) = r.bytes() else { return false }
                if fileVersion == nil { fileVersion = String(decoding: UnsafeBufferPointer(start: s, count: len), as: UTF8.self) }
            case 5 << 3 | 2:
                guard let b = r.bytes() else { return false }
                summary = b
            default:
                guard r.skip(wire: key & 7) else { return false }
            }
        }
        if startWallTime == nil, !wallTime.isNaN { startWallTime = wallTime }
        guard let (s, len) = summary else { return true }
        guard RunLogLine.stepRange.contains(step) else {
            // Replay and export do arithmetic on steps; one of 2^63 is no step of any run.
            warn("step \(step) is outside 0...2^53; event skipped")
            return true
        }
        // Summary: repeated Value value = 1.
        var sr = ProtoReader(s, len)
        while !sr.atEnd {
            guard let key = sr.varint() else { return false }
            if key == 1 << 3 | 2 {
                guard let (v, vlen) = sr.bytes(), decodeValue(v, vlen, step: step, wallTime: wallTime) else { return false }
            } else {
                guard sr.skip(wire: key & 7) else { return false }
            }
        }
        return true
    }

    /// Summary.Value: tag 1, simple_value 2 (float), tensor 8, metadata 9 (plugin_data 1 -> plugin_name 1).
    @inline(__always)
    private func decodeValue(_ p: UnsafePointer<UInt8>, _ n: Int, step: Int, wallTime: Double) -> Bool {
        var r = ProtoReader(p, n)
        var tag: (UnsafePointer<UInt8>, Int) = (p, 0)
        var simple: Float?
        var tensor: (UnsafePointer<UInt8>, Int)?
        var plugin: (UnsafePointer<UInt8>, Int)?
        var other = false
        while !r.atEnd {
            guard let key = r.varint() else { return false }
            switch key {
            case 1 << 3 | 2:
                guard let b = r.bytes() else { return false }
                tag = b
            case 2 << 3 | 5:
                guard let bits = r.fixed32() else { return false }
                simple = Float(bitPattern: bits)
            case 8 << 3 | 2:
                guard let b = r.bytes() else { return false }
                tensor = b
            case 9 << 3 | 2:
                guard let (m, mlen) = r.bytes() else { return false }
                plugin = Self.pluginName(m, mlen)
            case 3 << 3 | 2, 4 << 3 | 2, 5 << 3 | 2, 6 << 3 | 2:  // old histogram, image, histo, audio
                other = true
                guard r.skip(wire: 2) else { return false }
            default:
                guard r.skip(wire: key & 7) else { return false }
            }
        }
        let value: Double
        if let simple {
            value = Double(simple)
        } else if let (t, tlen) = tensor, !other,
                  plugin == nil || (plugin!.1 == 7 && memcmp(plugin!.0, "scalars", 7) == 0),
                  let v = Self.tensorScalar(t, tlen) {
            value = v
        } else {
            skippedValues += 1
            return true
        }
        var isNew = false
        let index = tags.index(tag.0, tag.1, isNew: &isNew)
        if isNew {
            series.append(ScalarSeries(tag: String(decoding: UnsafeBufferPointer(start: tag.0, count: tag.1), as: UTF8.self)))
        }
        series[index].steps.append(step)
        series[index].values.append(value)
        series[index].wallTimes.append(wallTime)
        return true
    }

    private static func pluginName(_ p: UnsafePointer<UInt8>, _ n: Int) -> (UnsafePointer<UInt8>, Int)? {
        var r = ProtoReader(p, n)
        while !r.atEnd {
            guard let key = r.varint() else { return nil }
            if key == 1 << 3 | 2 {
                guard let (d, dlen) = r.bytes() else { return nil }
                var pr = ProtoReader(d, dlen)
                while !pr.atEnd {
                    guard let k = pr.varint() else { return nil }
                    if k == 1 << 3 | 2 { return pr.bytes() }
                    guard pr.skip(wire: k & 7) else { return nil }
                }
                return nil
            }
            guard r.skip(wire: key & 7) else { return nil }
        }
        return nil
    }

    // DataType values.
    private static let dtFloat: UInt64 = 1, dtDouble: UInt64 = 2, dtInt32: UInt64 = 3, dtInt64: UInt64 = 9
    private static let dtHalf: UInt64 = 19, dtBfloat16: UInt64 = 14

    /// The value of a one-element numeric TensorProto: dtype 1, tensor_shape 2, tensor_content 4,
    /// float_val 5, double_val 6, int_val 7, int64_val 10, half_val 13 (packed or not).
    private static func tensorScalar(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        var r = ProtoReader(p, n)
        var dtype: UInt64 = 0
        var elements = 1
        var value: Double?
        var content: (UnsafePointer<UInt8>, Int)?
        var halfBits: UInt64?
        while !r.atEnd {
            guard let key = r.varint() else { return nil }
            switch key {
            case 1 << 3 | 0:
                guard let d = r.varint() else { return nil }
                dtype = d
            case 2 << 3 | 2:
                guard let (s, slen) = r.bytes(), let count = shapeElements(s, slen) else { return nil }
                elements = count
            case 4 << 3 | 2:
                content = r.bytes()
                if content == nil { return nil }
            case 5 << 3 | 2:
                guard let (s, slen) = r.bytes(), slen >= 4 else { return nil }
                value = Double(Float(bitPattern: UnsafeRawPointer(s).loadUnaligned(as: UInt32.self).littleEndian))
            case 5 << 3 | 5:
                guard let bits = r.fixed32() else { return nil }
                value = Double(Float(bitPattern: bits))
            case 6 << 3 | 2:
                guard let (s, slen) = r.bytes(), slen >= 8 else { return nil }
                value = Double(bitPattern: UnsafeRawPointer(s).loadUnaligned(as: UInt64.self).littleEndian)
            case 6 << 3 | 1:
                guard let bits = r.fixed64() else { return nil }
                value = Double(bitPattern: bits)
            case 7 << 3 | 2, 10 << 3 | 2, 13 << 3 | 2:
                guard let (s, slen) = r.bytes() else { return nil }
                var vr = ProtoReader(s, slen)
                guard let v = vr.varint() else { return nil }
                if key >> 3 == 13 { halfBits = v } else { value = Double(Int64(bitPattern: v)) }
            case 7 << 3 | 0, 10 << 3 | 0, 13 << 3 | 0:
                guard let v = r.varint() else { return nil }
                if key >> 3 == 13 { halfBits = v } else { value = Double(Int64(bitPattern: v)) }
            default:
                guard r.skip(wire: key & 7) else { return nil }
            }
        }
        guard elements == 1 else { return nil }
        if let halfBits {
            let bits = UInt16(truncatingIfNeeded: halfBits)
            if dtype == dtBfloat16 { return Double(Float(bitPattern: UInt32(bits) << 16)) }
            return Double(halfToFloat(bits))
        }
        if let value { return value }
        guard let (c, clen) = content else { return nil }
        let raw = UnsafeRawPointer(c)
        switch dtype {
        case dtFloat where clen == 4: return Double(Float(bitPattern: raw.loadUnaligned(as: UInt32.self).littleEndian))
        case dtDouble where clen == 8: return Double(bitPattern: raw.loadUnaligned(as: UInt64.self).littleEndian)
        case dtInt32 where clen == 4: return Double(Int32(bitPattern: raw.loadUnaligned(as: UInt32.self).littleEndian))
        case dtInt64 where clen == 8: return Double(Int64(bitPattern: raw.loadUnaligned(as: UInt64.self).littleEndian))
        case dtHalf where clen == 2: return Double(halfToFloat(raw.loadUnaligned(as: UInt16.self).littleEndian))
        case dtBfloat16 where clen == 2:
            return Double(Float(bitPattern: UInt32(raw.loadUnaligned(as: UInt16.self).littleEndian) << 16))
        default: return nil
        }
    }

    /// TensorShapeProto: dim 2 (Dim: size 1). The element count, or nil when unknown rank.
    private static func shapeElements(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        var r = ProtoReader(p, n)
        var count = 1
        while !r.atEnd {
            guard let key = r.varint() else { return nil }
            if key == 2 << 3 | 2 {
                guard let (d, dlen) = r.bytes() else { return nil }
                var dr = ProtoReader(d, dlen)
                var size: Int64 = 0
                while !dr.atEnd {
                    guard let k = dr.varint() else { return nil }
                    if k == 1 << 3 | 0 { size = Int64(bitPattern: dr.varint() ?? 0) } else if !dr.skip(wire: k & 7) { return nil }
                }
                count = count &* Int(max(size, 0))
            } else if key == 3 << 3 | 0 {
                if r.varint() != 0 { return nil }  // unknown_rank
            } else if !r.skip(wire: key & 7) {
                return nil
            }
        }
        return count
    }

    private static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let frac = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(frac) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | frac << 13)
    }
}
