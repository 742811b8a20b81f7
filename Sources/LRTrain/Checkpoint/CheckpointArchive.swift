import Foundation
import LRLog

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

    /// Reads an archive. Nothing in it is trusted: every length and count is checked against the bytes that are
    /// left before anything is allocated, so a crafted file (even one with a valid checksum) gets one line saying
    /// what is wrong, never a trap or an allocation the file does not back.
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
        reader = ByteReader(bytes: bytes, offset: 8, end: bytes.count - 16)
        let corrupt = "; the file is corrupt or was not written by lrtop: use an earlier checkpoint"
        guard let metaLen = reader.u64(), let meta = reader.take(metaLen) else {
            throw bad("the checkpoint's metadata length runs past the end of the file" + corrupt)
        }
        // Each tensor takes at least 12 bytes (name length and value count): a larger count is a lie.
        guard let count = reader.u64(), count <= UInt64(reader.remaining / 12) else {
            throw bad("the checkpoint claims more tensors than its \(reader.remaining) bytes can hold" + corrupt)
        }
        var tensors: [String: [Float]] = [:]
        for i in 0..<Int(count) {
            guard let nameLen = reader.u32(), let nameBytes = reader.take(UInt64(nameLen)) else {
                throw bad("the name of tensor \(i + 1) runs past the end of the file" + corrupt)
            }
            guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty else {
                throw bad("the name of tensor \(i + 1) is not UTF-8 text" + corrupt)
            }
            let shown = TerminalText.excerpt(name)
            guard let n = reader.u64(), n <= UInt64(reader.remaining / 4), let raw = reader.take(n * 4) else {
                throw bad("tensor '\(shown)' claims more values than the \(reader.remaining) bytes left can hold" + corrupt)
            }
            guard tensors[name] == nil else { throw bad("tensor '\(shown)' appears twice" + corrupt) }
            tensors[name] = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        guard reader.remaining == 0 else {
            throw bad("\(reader.remaining) bytes after the last tensor belong to none" + corrupt)
        }
        return Contents(metadata: Data(meta), tensors: tensors)
    }

    /// Writes atomically and durably (`SafeFiles.writeAtomically`): a temporary file created beside it, fsync,
    /// rename, fsync of the folder. A crash at any point leaves either the old file or the complete new one.
    public static func write(_ contents: Contents, to url: URL) throws {
        do {
            try SafeFiles.prepareFolder(url.deletingLastPathComponent(), what: "the checkpoints folder",
                                        instead: "choose another --run-dir")
            try SafeFiles.writeAtomically(encode(contents), to: url, what: "checkpoint", durable: true)
        } catch {
            throw CheckpointError(error.message, code: error.code)
        }
    }

    public static func read(from url: URL) throws -> Contents {
        let bytes: [UInt8]
        do { bytes = try FileProblem.readBytes(url.path, what: "checkpoint") } catch {
            throw CheckpointError(error.message, code: error.code)
        }
        return try decode(bytes, path: url.path)
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
    /// The errno of a failed write or read (a full disk: ENOSPC), when there was one.
    public let code: Int32?
    public init(_ description: String, code: Int32? = nil) { self.description = description; self.code = code }
}

/// Reads little-endian numbers and byte runs up to `end`, refusing any length that goes past it.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int
    init(bytes: [UInt8], offset: Int, end: Int? = nil) { self.bytes = bytes; self.offset = offset; self.end = end ?? bytes.count }

    var remaining: Int { end - offset }

    mutating func take(_ n: UInt64) -> ArraySlice<UInt8>? {
        guard n <= UInt64(remaining) else { return nil }
        defer { offset += Int(n) }
        return bytes[offset..<(offset + Int(n))]
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
