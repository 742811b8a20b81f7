// The few protobuf primitives the event files need, over raw pointers (no allocation).
// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3/4, groups, are not used by events).

struct ProtoReader {
    var p: UnsafePointer<UInt8>
    let end: UnsafePointer<UInt8>

    init(_ p: UnsafePointer<UInt8>, _ count: Int) { self.p = p; end = p + count }

    var atEnd: Bool { p >= end }

    @inline(__always)
    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while p < end {
            let b = p.pointee
            p += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift >= 64 { return nil }
        }
        return nil
    }

    @inline(__always)
    mutating func fixed64() -> UInt64? {
        guard end - p >= 8 else { return nil }
        let v = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
        p += 8
        return v
    }

    @inline(__always)
    mutating func fixed32() -> UInt32? {
        guard end - p >= 4 else { return nil }
        let v = UnsafeRawPointer(p).loadUnaligned(as: UInt32.self).littleEndian
        p += 4
        return v
    }

    /// A length-delimited field's bytes.
    @inline(__always)
    mutating func bytes() -> (UnsafePointer<UInt8>, Int)? {
        guard let n = varint(), n <= UInt64(end - p) else { return nil }
        let s = p
        p += Int(n)
        return (s, Int(n))
    }

    /// Skips a field of wire type `wire`; false if malformed.
    @inline(__always)
    mutating func skip(wire: UInt64) -> Bool {
        switch wire {
        case 0: return varint() != nil
        case 1: return fixed64() != nil
        case 2: return bytes() != nil
        case 5: return fixed32() != nil
        default: return false
        }
    }
}

/// Appending protobuf fields to a byte buffer.
extension Array where Element == UInt8 {
    mutating func appendVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        append(UInt8(v))
    }

    mutating func appendLittleEndian<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendKey(field: Int, wire: Int) { appendVarint(UInt64(field << 3 | wire)) }
}
