import Foundation

/// Why a safetensors file could not be read or does not fit a model: one line naming the file, the tensor and the
/// problem.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The safetensors format (huggingface/safetensors), read and written by hand:
///
///     u64 little-endian N | N bytes of JSON header | data
///     header: {"__metadata__": {"key": "value", …},           (optional; strings only)
///              "fc1.weight": {"dtype": "F32", "shape": [256, 784], "data_offsets": [begin, end]}, …}
///
/// Offsets count from the first byte after the header. Tensors are row-major, little-endian, and tile the data
/// exactly: no gaps, no overlaps, nothing after the last one (the reference library refuses anything else). The
/// reference writer pads the header with spaces so the data starts at a multiple of 8, sorts tensors by falling
/// dtype alignment and then by name, and keeps the header under 100 MB; `encode` does the same.
public struct Safetensors: Sendable {
    /// An element type: its name in the header and its size in bytes (nil for the sub-byte types we never read).
    public struct DType: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public let bytes: Int
        public var description: String { name }

        public static let f64 = DType(name: "F64", bytes: 8), f32 = DType(name: "F32", bytes: 4)
        public static let f16 = DType(name: "F16", bytes: 2), bf16 = DType(name: "BF16", bytes: 2)
        public static let i64 = DType(name: "I64", bytes: 8), i32 = DType(name: "I32", bytes: 4)

        /// Every dtype the reference library defines, with its element size (the 4-bit and 6-bit float formats are
        /// packed; lrtop never reads them, so they only need to be recognised).
        static let known: [String: Int] = [
            "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
            "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8, "C64": 8,
        ]
    }

    /// One tensor's header entry; `range` is absolute within the file's bytes.
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// A tensor to write: name, dtype, shape and its raw little-endian bytes.
    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var data: [UInt8]
        public init(name: String, dtype: DType, shape: [Int], data: [UInt8]) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.data = data
        }
        public init(name: String, shape: [Int], floats: [Float]) {
            self.init(name: name, dtype: .f32, shape: shape, data: floats.withUnsafeBytes { Array($0) })
        }
        public init(name: String, shape: [Int], int64: [Int64]) {
            self.init(name: name, dtype: .i64, shape: shape, data: int64.map { $0.littleEndian }.withUnsafeBytes { Array($0) })
        }
    }

    static let maxHeaderBytes = 100_000_000

    /// Where the bytes came from, for messages.
    public let source: String
    public let metadata: [String: String]
    /// Entries in data order.
    public let entries: [Entry]
    private let bytes: [UInt8]
    private let index: [String: Int]

    public subscript(name: String) -> Entry? { index[name].map { entries[$0] } }
    public var names: [String] { entries.map(\.name) }

    public static func read(contentsOf url: URL) throws -> Safetensors {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafetensorsError("\(url.path): cannot read the file (\((error as NSError).localizedDescription))")
        }
        return try Safetensors(bytes: [UInt8](data), source: url.path)
    }

    /// Parses and checks the header against the data; throws `SafetensorsError` naming the first problem.
    public init(bytes: [UInt8], source: String) throws {
        func bad(_ what: String) -> SafetensorsError { SafetensorsError("\(source): \(what)") }
        guard bytes.count >= 8 else {
            throw bad("truncated: \(bytes.count) bytes, too short to hold the 8-byte header length of a safetensors file")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw bad("the header claims \(n) bytes (the format allows at most 100 MB): not a safetensors file, or a corrupt one")
        }
        let headerEnd = 8 + Int(n)
        guard headerEnd <= bytes.count else {
            throw bad("truncated: the header claims \(n) bytes but only \(bytes.count - 8) follow the length")
        }
        guard n >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw bad("the header is not a JSON object: not a safetensors file")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) } catch {
            throw bad("the header is not valid JSON: not a safetensors file, or a corrupt one")
        }
        guard let header = json as? [String: Any] else { throw bad("the header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let meta = header["__metadata__"] {
            guard let dict = meta as? [String: Any] else { throw bad("__metadata__ is not an object of strings") }
            for (k, v) in dict {
                guard let s = v as? String else { throw bad("__metadata__ key '\(k)' is not a string") }
                metadata[k] = s
            }
        }
        let dataLength = bytes.count - headerEnd
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            func badTensor(_ what: String) -> SafetensorsError { bad("tensor '\(name)': \(what)") }
            guard let info = value as? [String: Any] else { throw badTensor("its header entry is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw badTensor("no dtype in its header entry") }
            guard let size = DType.known[dtypeName] else {
                throw badTensor("unknown dtype '\(dtypeName)' (safetensors dtypes: \(DType.known.keys.sorted().joined(separator: ", ")))")
            }
            guard let shapeValues = info["shape"] as? [Any], let shape = Self.integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw badTensor("its shape is not a list of non-negative integers")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], let offsets = Self.integers(offsetValues), offsets.count == 2 else {
                throw badTensor("its data_offsets are not a pair of integers [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0 && begin <= end else { throw badTensor("data_offsets [\(begin), \(end)] run backwards") }
            guard end <= dataLength else {
                throw badTensor("data_offsets [\(begin), \(end)] reach past the end of the data (\(dataLength) bytes): the file is truncated or its header lies")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw badTensor("shape \(shape) is too large") }
                elements = product
            }
            let (needed, tooLarge) = elements.multipliedReportingOverflow(by: size)
            guard !tooLarge else { throw badTensor("shape \(shape) is too large") }
            guard needed == end - begin else {
                throw badTensor("data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but \(dtypeName) \(shape) needs \(needed)")
            }
            entries.append(Entry(name: name, dtype: DType(name: dtypeName, bytes: size), shape: shape,
                                 range: (headerEnd + begin)..<(headerEnd + end)))
        }
        // The data must be tiled exactly, as the reference library requires.
        entries.sort { ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name) }
        var cursor = headerEnd
        for e in entries {
            if e.range.lowerBound < cursor {
                let other = entries.last { $0.name != e.name && $0.range.overlaps(e.range) }?.name ?? "another tensor"
                throw bad("tensor '\(e.name)': data_offsets [\(e.range.lowerBound - headerEnd), \(e.range.upperBound - headerEnd)] overlap tensor '\(other)': the header lies about offsets")
            }
            if e.range.lowerBound > cursor {
                throw bad("tensor '\(e.name)': data_offsets start at \(e.range.lowerBound - headerEnd), leaving bytes \(cursor - headerEnd)..<\(e.range.lowerBound - headerEnd) unused: the header lies about offsets")
            }
            cursor = e.range.upperBound
        }
        if cursor != bytes.count {
            throw bad("\(bytes.count - cursor) bytes after the last tensor belong to none: the header lies about offsets, or the file was appended to")
        }
        self.source = source
        self.metadata = metadata
        self.entries = entries
        self.bytes = bytes
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // A fractional or huge number does not convert to Int.
            guard let i = v as? Int else { return nil }
            out.append(i)
        }
        return out
    }

    /// The values of a floating-point tensor as Float32: F32 exactly, F16 and BF16 widened exactly, F64 rounded.
    public func floats(_ entry: Entry) throws -> [Float] {
        let n = entry.elementCount, start = entry.range.lowerBound
        return try bytes.withUnsafeBytes { raw -> [Float] in
            let base = raw.baseAddress! + start
            switch entry.dtype.name {
            case "F32":
                return (0..<n).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case "F16":
                return (0..<n).map { Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
            case "BF16":
                return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            case "F64":
                return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            default:
                throw SafetensorsError("\(source): tensor '\(entry.name)' is \(entry.dtype.name): lrtop reads weights stored as F32, F16 or BF16")
            }
        }
    }

    /// The values of an integer tensor (a BatchNorm's `num_batches_tracked`).
    public func integers(_ entry: Entry) throws -> [Int64] {
        let n = entry.elementCount, start = entry.range.lowerBound
        return try bytes.withUnsafeBytes { raw -> [Int64] in
            let base = raw.baseAddress! + start
            switch entry.dtype.name {
            case "I64": return (0..<n).map { Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case "I32": return (0..<n).map { Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            default:
                throw SafetensorsError("\(source): tensor '\(entry.name)' is \(entry.dtype.name): expected an integer count (I64)")
            }
        }
    }

    /// The bytes of a safetensors file holding `tensors` and `metadata`, laid out as the reference writer does.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        let ordered = tensors.sorted { ($0.dtype.bytes, $1.name) > ($1.dtype.bytes, $0.name) }
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
        }
        var offset = 0
        for t in ordered {
            precondition(t.data.count == t.shape.reduce(1, *) * t.dtype.bytes, "Safetensors.encode: \(t.name) holds \(t.data.count) bytes for \(t.dtype) \(t.shape)")
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.name)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out += headerBytes
        for t in ordered { out += t.data }
        return out
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
