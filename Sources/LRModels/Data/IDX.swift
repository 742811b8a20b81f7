#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CZlib

/// One IDX file (the MNIST family's format), header parsed, data left as bytes.
///
///     bytes 0-1: 0x00 0x00   byte 2: element type (0x08 = unsigned byte)   byte 3: number of dimensions d
///     then d big-endian UInt32 sizes, then the elements row-major
public struct IDXFile: Sendable {
    public let path: String
    public let dims: [Int]
    /// The whole (decompressed) file; the elements start at `dataOffset`.
    public let bytes: [UInt8]
    public let dataOffset: Int
    public var elementCount: Int { dims.reduce(1, *) }
}

public enum IDX {
    /// Reads and checks an IDX file of unsigned bytes, raw or gzip-compressed (detected by the bytes 1f 8b).
    /// Throws `DataError` with a one-line description for a missing, unreadable, truncated or malformed file.
    public static func read(_ path: String) throws -> IDXFile {
        let (bytes, gzipEndedEarly) = try readDecompressed(path)
        let where_ = gzipEndedEarly ? " (the gzip stream ends early)" : ""
        guard bytes.count >= 4 else {
            throw DataError(.truncated, "\(path): truncated: \(bytes.count) bytes\(where_), too short for an IDX header — \(DataError.redownload)")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            let magic = bytes[0..<4].map { hex2($0) }.joined()
            throw DataError(.badFormat, "\(path): not an IDX file (magic number 0x\(magic), expected 0x0000080N) — \(DataError.redownload)")
        }
        guard bytes[2] == 0x08 else {
            throw DataError(.unsupportedType, "\(path): IDX element type 0x\(hex2(bytes[2])) (\(typeName(bytes[2]))) is not supported: lrtop reads unsigned-byte (0x08) images and labels — use the MNIST-format files")
        }
        let rank = Int(bytes[3])
        guard rank >= 1 && rank <= 4 else {
            throw DataError(.badFormat, "\(path): IDX header declares \(rank) dimensions, expected 1 to 4 — \(DataError.redownload)")
        }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw DataError(.truncated, "\(path): truncated: \(bytes.count) bytes\(where_), the \(rank)-D IDX header alone needs \(headerSize) — \(DataError.redownload)")
        }
        var dims: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            dims.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let expected = dims.reduce(1, *)
        let held = bytes.count - headerSize
        if held < expected {
            throw DataError(.truncated, "\(path): truncated: header says \(describe(dims)) (\(expected) bytes) but the file holds \(held)\(where_) — \(DataError.redownload)")
        }
        if held > expected {
            throw DataError(.badFormat, "\(path): malformed: header says \(describe(dims)) (\(expected) bytes) but the file holds \(held) — \(DataError.redownload)")
        }
        return IDXFile(path: path, dims: dims, bytes: bytes, dataOffset: headerSize)
    }

    /// The bytes of an unsigned-byte IDX file holding `values` with shape `dims`.
    public static func encode(dims: [Int], values: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return out + values
    }

    /// Writes `bytes` to `path`, gzip-compressed when `gzip`. Returns false when the file cannot be written.
    @discardableResult
    public static func writeFile(_ path: String, bytes: [UInt8], gzip: Bool) -> Bool {
        if gzip {
            guard let gz = gzopen(path, "wb") else { return false }
            let written = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
            return gzclose(gz) == Z_OK && Int(written) == bytes.count
        }
        guard let f = fopen(path, "wb") else { return false }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        return fclose(f) == 0 && written == bytes.count
    }

    // MARK: - Reading

    /// The file's bytes, decompressed when it starts with the gzip magic. `gzipEndedEarly`: the stream was cut off
    /// (what it held is returned, so the size check can say how much is missing).
    static func readDecompressed(_ path: String) throws -> (bytes: [UInt8], gzipEndedEarly: Bool) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            if e == ENOENT || e == ENOTDIR {
                throw DataError(.missing, "\(path): no such file — \(DataError.redownload)")
            }
            throw DataError(.unreadable, "\(path): cannot read: \(String(cString: strerror(e)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw DataError(.unreadable, "\(path): not a regular file — expected an IDX file here")
        }
        let size = Int(st.st_size)
        guard let f = fopen(path, "rb") else {
            throw DataError(.unreadable, "\(path): cannot open: \(String(cString: strerror(errno))) — check its permissions")
        }
        var head: [UInt8] = [0, 0]
        let headCount = head.withUnsafeMutableBytes { fread($0.baseAddress, 1, 2, f) }
        let isGzip = headCount == 2 && head[0] == 0x1f && head[1] == 0x8b
        if !isGzip {
            rewind(f)
            var bytes = [UInt8](repeating: 0, count: size)
            let got = size == 0 ? 0 : bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
            fclose(f)
            if got < size { bytes.removeLast(size - got) }
            return (bytes, false)
        }
        // gzip: the last 4 bytes hold the uncompressed size mod 2³², a good first capacity (a hint only: the file
        // says it, so it is capped, and the header's declared size bounds what is read).
        var hint = 1 << 20
        if size >= 18 {
            var tail: [UInt8] = [0, 0, 0, 0]
            fseek(f, -4, SEEK_END)
            if tail.withUnsafeMutableBytes({ fread($0.baseAddress, 1, 4, f) }) == 4 {
                let isize = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
                hint = max(1 << 16, min(isize, min(1 << 30, size * 1100)))
            }
        }
        fclose(f)
        guard let gz = gzopen(path, "rb") else {
            throw DataError(.unreadable, "\(path): cannot open: \(String(cString: strerror(errno))) — check its permissions")
        }
        defer { gzclose(gz) }
        gzbuffer(gz, 1 << 18)
        var out: [UInt8] = []
        var endedEarly = false
        /// Decompresses until `out` holds `count` bytes or the stream ends; growing `out` by doubling, so memory
        /// follows what the stream really holds rather than what a header claims.
        func fill(to count: Int) throws {
            while out.count < count && !endedEarly {
                let filled = out.count
                let room = min(count - filled, max(filled, min(hint + 1, count)), 1 << 30)
                out.append(contentsOf: repeatElement(0, count: room))
                let got = out.withUnsafeMutableBytes { gzread(gz, $0.baseAddress! + filled, UInt32(room)) }
                var errnum: Int32 = 0
                let message = gzerror(gz, &errnum)
                if got < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR) {
                    let text = message.map { String(cString: $0) } ?? "error \(errnum)"
                    throw DataError(.badFormat, "\(path): corrupt gzip data (\(text)) — \(DataError.redownload)")
                }
                out.removeLast(room - Int(got))
                if errnum == Z_BUF_ERROR { endedEarly = true }
                if got == 0 { break }
            }
        }
        // The header first: it declares how many bytes follow, which bounds the rest (a gzip bomb named as a dataset
        // file would otherwise be decompressed without limit). A header `read` refuses stops here: it says why.
        try fill(to: 4)
        guard out.count == 4, out[0] == 0, out[1] == 0, out[2] == 0x08, (1...4).contains(Int(out[3])) else {
            return (out, endedEarly)
        }
        let rank = Int(out[3])
        try fill(to: 4 + 4 * rank)
        guard out.count == 4 + 4 * rank else { return (out, endedEarly) }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(out[4 + 4 * d + $1]) } }
        var declared = 1
        var overflow = false
        for dim in dims {
            let (product, over) = declared.multipliedReportingOverflow(by: dim)
            declared = product
            overflow = overflow || over
        }
        if overflow || declared > maxElementBytes {
            throw DataError(.badFormat, "\(path): IDX header declares \(describe(dims))\(overflow ? "" : " (\(declared) bytes)"), "
                            + "more than lrtop reads (\(maxElementBytes >> 30) GiB at most) — is it the right file? \(DataError.redownload)")
        }
        // One byte past the declared end tells a stream that holds more than its header says, without reading it all.
        let declaredEnd = out.count + declared
        try fill(to: declaredEnd + 1)
        if out.count > declaredEnd {
            throw DataError(.badFormat, "\(path): the gzip stream holds more than the \(describe(dims)) (\(declared) bytes) its IDX header declares; "
                            + "lrtop stopped decompressing there — \(DataError.redownload)")
        }
        return (out, endedEarly)
    }

    /// The most element bytes an IDX file may declare: EMNIST's largest split is about 0.6 GB, so 4 GiB leaves
    /// room for real data sets while a header that claims terabytes is refused before anything is allocated.
    static let maxElementBytes = 4 << 30

    private static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    private static func typeName(_ code: UInt8) -> String {
        switch code {
        case 0x09: return "signed byte"
        case 0x0B: return "int16"
        case 0x0C: return "int32"
        case 0x0D: return "float32"
        case 0x0E: return "float64"
        default: return "unknown type"
        }
    }

    /// "60000x28x28 images", "60000 labels".
    static func describe(_ dims: [Int]) -> String {
        let text = dims.map(String.init).joined(separator: "x")
        switch dims.count {
        case 1: return "\(text) labels"
        case 3: return "\(text) images"
        default: return "\(text) values"
        }
    }
}
