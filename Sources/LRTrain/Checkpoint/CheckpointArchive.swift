import Foundation

/// The on-disk container of a checkpoint: JSON metadata plus raw Float32 tensors.
///
///     "LRTOPCK1" | u64 metadata length | metadata JSON | u64 tensor count
///     per tensor: u32 name length | name UTF-8 | u64 element count | little-endian Float32 values
///     u64 FNV-1a hash of every byte before it | "LRTOPEND"
///
/// Binary tensors keep values bit-exact (a resumed run must match the uninterrupted one bit for bit) and are
/// fast to write; the trailer makes a file cut short by a crash fail to load instead of loading half a model.
public enum CheckpointArchive {
    static let magic = Array("LRTOPCK1".utf8)
    static let endMagic = Array("LRTOPEND".utf8)

    public struct Contents {
        public var metadata: Data
        public var tensors: [String: [Float]]
        public init(metadata: Data, tensors: [String: [Float]]) { self.metadata = metadata; self.tensors = tensors }
    }

    public static func encode(_ contents: Contents) -> [UInt8] {
        var out: [UInt8] = []
        let floatBytes = contents.tensors.values.reduce(0) { $0 + $1.count * 4 }
        out.reserveCapacity(64 + contents.metadata.count + floatBytes + contents.tensors.count * 64)
        out += magic
        append(UInt64(contents.metadata.count), to: &out)
        out += contents.metadata
        append(UInt64(contents.tensors.count), to: &out)
        for name in contents.tensors.keys.sorted() {
            let values = contents.tensors[name]!
            let nameBytes = Array(name.utf8)
            append(UInt32(nameBytes.count), to: &out)
            out += nameBytes
            append(UInt64(values.count), to: &out)
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        append(fnv1a(out), to: &out)
        out += endMagic
        return out
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> Contents {
        func bad(_ what: String) -> CheckpointError { CheckpointError("\(path): \(what)") }
        guard bytes.count >= 32, Array(bytes[0..<8]) == magic else {
            throw bad("not an lrtop checkpoint (bad magic); pass a .ckpt file written by lrtop")
        }
        guard Array(bytes[(bytes.count - 8)...]) == endMagic else {
            throw bad("checkpoint is incomplete (cut short while being written); use an earlier checkpoint")
        }
        let body = bytes[0..<(bytes.count - 16)]
        var reader = ByteReader(bytes: bytes, offset: bytes.count - 16)
        guard let stored = reader.u64(), stored == fnv1a(body) else {
            throw bad("checkpoint is corrupt (checksum mismatch); use an earlier checkpoint")
        }
        reader = ByteReader(bytes: bytes, offset: 8)
        guard let metaLen = reader.u64(), let meta = reader.take(Int(metaLen)), let count = reader.u64() else {
            throw bad("checkpoint header is malformed")
        }
        var tensors: [String: [Float]] = [:]
        for _ in 0..<count {
            guard let nameLen = reader.u32(), let nameBytes = reader.take(Int(nameLen)),
                  let n = reader.u64(), let raw = reader.take(Int(n) * 4) else {
                throw bad("checkpoint tensor table is malformed")
            }
            let values = raw.withUnsafeBytes { buf in
                Array(buf.bindMemory(to: Float.self))
            }
            tensors[String(decoding: nameBytes, as: UTF8.self)] = values
        }
        return Contents(metadata: Data(meta), tensors: tensors)
    }

    /// Writes atomically: a temporary file in the same folder, fsync, rename, fsync of the folder. A crash at any
    /// point leaves either the old file or the complete new one.
    public static func write(_ contents: Contents, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let bytes = encode(contents)
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointError("cannot write \(tmp.path): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok: Bool = bytes.withUnsafeBytes { buf in
            while written < buf.count {
                let r = Foundation.write(fd, buf.baseAddress! + written, buf.count - written)
                if r <= 0 { return false }
                written += r
            }
            return fsync(fd) == 0
        }
        let err = errno
        close(fd)
        guard ok else {
            unlink(tmp.path)
            throw CheckpointError("cannot write checkpoint \(url.path): \(String(cString: strerror(err)))")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let e = errno
            unlink(tmp.path)
            throw CheckpointError("cannot move checkpoint into place at \(url.path): \(String(cString: strerror(e)))")
        }
        let dfd = open(dir.path, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    public static func read(from url: URL) throws -> Contents {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw CheckpointError("\(url.path): no such checkpoint file")
        }
        return try decode([UInt8](data), path: url.path)
    }

    private static func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func fnv1a<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, offset + n <= bytes.count else { return nil }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }
    mutating func u64() -> UInt64? {
        guard let s = take(8) else { return nil }
        return s.reversed().reduce(0) { ($0 << 8) | UInt64($1) }
    }
    mutating func u32() -> UInt32? {
        guard let s = take(4) else { return nil }
        return s.reversed().reduce(0) { ($0 << 8) | UInt32($1) }
    }
}
