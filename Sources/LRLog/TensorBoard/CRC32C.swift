/// CRC-32C (Castagnoli), as TFRecord framing uses it. Software slicing-by-8: eight 256-entry tables,
/// eight bytes per step; about 1 byte per cycle here, a few percent of an event file import.
public enum CRC32C {
    /// tables[k * 256 + b]: the CRC of byte b followed by k zero bytes. Built once, never written again.
    nonisolated(unsafe) static let tables: UnsafePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return UnsafePointer(t)
    }()

    /// CRC-32C of `count` bytes at `p`, continuing from `crc` (0 to start).
    @inline(__always)
    public static func checksum(_ p: UnsafeRawPointer, _ count: Int, continuing crc: UInt32 = 0) -> UInt32 {
        let t = tables
        var c = ~crc
        var q = p
        var n = count
        while n >= 8 {
            let lo = q.loadUnaligned(as: UInt32.self).littleEndian ^ c
            let hi = q.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            q += 8
            n -= 8
        }
        while n > 0 {
            c = t[Int((c ^ UInt32(q.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
            q += 1
            n -= 1
        }
        return ~c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.count) }
    }

    /// The TFRecord mask: rotate right by 15 and add a constant, so CRCs of CRCs stay distinct.
    @inline(__always)
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
