// Fast, locale-independent number parsing and formatting for the text formats (run log, CSV).
//
// Parsing is exact (correctly rounded, like strtod in the C locale):
//   1. Clinger's fast path: a mantissa of at most 53 bits times an exact power of ten (|e| <= 22) is one
//      correctly rounded Double operation.
//   2. On x86_64, a mantissa of up to 19 digits times 10^e (|e| <= 27) is one correctly rounded Float80
//      operation; rounding that to Double is exact unless the Float80 result sits exactly on a Double
//      half-way point, which is detected and sent to step 3.
//   3. Anything else goes to the standard library's parser (strtod in the C locale).
// `Double.description` writes the shortest digits that round-trip, so steps 1 and 2 cover nearly every
// number lrtop writes.

@usableFromInline let exactPowersOfTen: [Double] = (0...22).map { e in
    var p = 1.0
    for _ in 0..<e { p *= 10 }
    return p
}

#if arch(x86_64)
@usableFromInline let exactPowersOfTen80: [Float80] = (0...27).map { e in
    var p: Float80 = 1
    for _ in 0..<e { p *= 10 }
    return p
}
#endif

@inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }

enum NumberParser {
    /// A decimal number's digits as read: up to 19 significant digits as an integer, a power of ten, whether digits
    /// beyond the 19th were dropped.
    struct Decimal {
        var negative: Bool
        var mantissa: UInt64
        var exponent: Int
        var inexact: Bool
    }

    /// Reads a decimal number (JSON syntax, plus a leading `+`) at `p`, stopping at the first byte that cannot
    /// continue it; nil, leaving `p` alone, when there is no number at `p`.
    @inline(__always)
    static func scanDecimal(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Decimal? {
        var q = p
        var negative = false
        if q < end {
            if q.pointee == UInt8(ascii: "-") { negative = true; q += 1 } else if q.pointee == UInt8(ascii: "+") { q += 1 }
        }
        var mantissa: UInt64 = 0
        var significant = 0
        var exponent = 0
        var inexact = false
        var sawDigit = false
        while q < end, isDigit(q.pointee) {
            sawDigit = true
            if significant < 19 {
                mantissa = mantissa &* 10 &+ UInt64(q.pointee &- 48)
                if mantissa != 0 { significant += 1 }
            } else {
                exponent += 1
                if q.pointee != UInt8(ascii: "0") { inexact = true }
            }
            q += 1
        }
        if q < end, q.pointee == UInt8(ascii: ".") {
            q += 1
            while q < end, isDigit(q.pointee) {
                sawDigit = true
                if significant < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(q.pointee &- 48)
                    exponent -= 1
                    if mantissa != 0 { significant += 1 }
                    // Past the first significant digit, eight digits at a time while they fit in the 19 (the long
                    // fractions of float32 values written as doubles: "0.8745999336242676").
                    while significant > 0, significant <= 11, end - q >= 9, let eight = eightDigits(q + 1) {
                        mantissa = mantissa &* 100_000_000 &+ eight
                        exponent -= 8
                        significant += 8
                        q += 8
                    }
                } else if q.pointee != UInt8(ascii: "0") {
                    inexact = true
                }
                q += 1
            }
        }
        guard sawDigit else { return nil }
        if q < end, q.pointee | 0x20 == UInt8(ascii: "e") {
            var r = q + 1
            var expNegative = false
            if r < end, r.pointee == UInt8(ascii: "-") || r.pointee == UInt8(ascii: "+") {
                expNegative = r.pointee == UInt8(ascii: "-"); r += 1
            }
            if r < end, isDigit(r.pointee) {
                var e = 0
                while r < end, isDigit(r.pointee) {
                    if e < 100_000 { e = e * 10 + Int(r.pointee &- 48) }
                    r += 1
                }
                exponent += expNegative ? -e : e
                q = r
            }
        }
        p = q
        return Decimal(negative: negative, mantissa: mantissa, exponent: exponent, inexact: inexact)
    }

    /// Parses a decimal number (JSON syntax, plus a leading `+`) at `p`, stopping at the first byte that
    /// cannot continue it. Returns nil, leaving `p` alone, when there is no number at `p`.
    @inline(__always)
    static func parseDouble(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        let start = p
        guard let d = scanDecimal(&p, end) else { return nil }
        let (negative, mantissa, exponent) = (d.negative, d.mantissa, d.exponent)
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        if !d.inexact {
            if mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
                var v = Double(mantissa)
                if exponent < 0 { v /= exactPowersOfTen[-exponent] } else { v *= exactPowersOfTen[exponent] }
                return negative ? -v : v
            }
            #if arch(x86_64)
            if exponent >= -27, exponent <= 27 {
                var r = Float80(mantissa)
                if exponent < 0 { r /= exactPowersOfTen80[-exponent] } else { r *= exactPowersOfTen80[exponent] }
                // The 11 Float80 significand bits below Double's 52: exactly 1000_0000_000 is a tie.
                if r.significandBitPattern & 0x7FF != 0x400 {
                    let v = Double(r)
                    return negative ? -v : v
                }
            }
            #endif
        }
        return slowParse(start, p)
    }

    /// Parses a number that is kept at float32 precision (a metric): the nearest Float, as a Double. Any mantissa of
    /// up to 19 digits times a power of ten up to 10^±22 takes one rounding to Double and one to Float: the same Float
    /// as exact parsing but for a decimal within a few Double ulps of halfway between two Floats (a float32 value,
    /// which is how metrics are made, written with the digits that read it back, always reads back as itself).
    @inline(__always)
    static func parseFloat(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        let start = p
        guard let d = scanDecimal(&p, end) else { return nil }
        if d.mantissa == 0 { return d.negative ? -0.0 : 0.0 }
        if d.exponent >= -22, d.exponent <= 22 {
            var v = Double(d.mantissa)
            if d.exponent < 0 { v /= exactPowersOfTen[-d.exponent] } else { v *= exactPowersOfTen[d.exponent] }
            return Double(Float(d.negative ? -v : v))
        }
        return slowParse(start, p).map { Double(Float($0)) }
    }

    /// The value of the 8 ASCII digits at `p`, or nil when they are not all digits (SWAR, as fast_float does it).
    @inline(__always)
    static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
        let bytes = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
        // Each byte 0x30...0x39: its high nibble is 3, and adding 6 keeps it 3.
        guard (bytes & 0xF0F0_F0F0_F0F0_F0F0) | (((bytes &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
                == 0x3333_3333_3333_3333 else { return nil }
        var v = bytes &- 0x3030_3030_3030_3030
        v = (v &* 10) &+ (v >> 8)  // pairs of digits
        v = (((v & 0x0000_00FF_0000_00FF) &* 0x000F_4240_0000_0064)
             &+ (((v >> 16) & 0x0000_00FF_0000_00FF) &* 0x0000_2710_0000_0001)) >> 32
        return v & 0xFFFF_FFFF
    }

    @inline(never)
    static func slowParse(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        let text = String(decoding: UnsafeBufferPointer(start: start, count: end - start), as: UTF8.self)
        return Double(text)
    }

    /// Parses an integer at `p` (an optional sign, digits). Returns nil when there is none or it overflows.
    @inline(__always)
    static func parseInt(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Int? {
        var q = p
        var negative = false
        if q < end, q.pointee == UInt8(ascii: "-") { negative = true; q += 1 }
        var v = 0
        let digitsStart = q
        while q < end, isDigit(q.pointee) {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(q.pointee &- 48))
            if o1 || o2 { return nil }
            v = a
            q += 1
        }
        if q == digitsStart { return nil }
        p = q
        return negative ? -v : v
    }

    /// Parses a whole byte range as a number: decimal, or NaN/Infinity spellings (`NaN`, `nan`, `inf`,
    /// `Infinity`, `-inf` ...). Leading/trailing spaces are ignored. Returns nil if it is anything else.
    static func parseCell(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        var s = start, e = end
        while s < e, s.pointee == 32 || s.pointee == 9 { s += 1 }
        while e > s, e[-1] == 32 || e[-1] == 9 || e[-1] == 13 { e -= 1 }
        if s == e { return nil }
        var p = s
        if let v = parseDouble(&p, e), p == e { return v }
        return parseSpecial(s, e)
    }

    /// `NaN`, `Infinity`, `-Infinity`, and the spellings pandas and Python print (`nan`, `inf`, `-inf`).
    static func parseSpecial(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        var s = start
        var negative = false
        if s < end, s.pointee == UInt8(ascii: "-") || s.pointee == UInt8(ascii: "+") {
            negative = s.pointee == UInt8(ascii: "-"); s += 1
        }
        let n = end - s
        guard n == 3 || n == 8 else { return nil }
        var lower: [UInt8] = []
        lower.reserveCapacity(n)
        for i in 0..<n { lower.append(s[i] | 0x20) }
        switch lower {
        case Array("nan".utf8): return negative ? -Double.nan : .nan
        case Array("inf".utf8), Array("infinity".utf8): return negative ? -.infinity : .infinity
        default: return nil
        }
    }
}

/// Appending numbers and JSON strings to a byte buffer, without Foundation.
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendASCII(_ s: StaticString) {
        s.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func appendInt(_ v: Int) {
        if v >= 0, v < 10 { append(UInt8(48 + v)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes scratch, enough for 20 digits
        var n = v.magnitude
        var count = 0
        Swift.withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[23 - count] = UInt8(48 + n % 10)
                n /= 10
                count += 1
            } while n > 0
            if v < 0 { append(UInt8(ascii: "-")) }
            append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }

    mutating func appendUInt64(_ v: UInt64) {
        if v <= UInt64(Int.max) { appendInt(Int(v)) } else { append(contentsOf: String(v).utf8) }
    }

    /// A finite Double as its shortest round-trip digits; NaN and infinities as the JSON strings
    /// "NaN", "Infinity", "-Infinity" (JSON has no literals for them).
    @inline(__always)
    mutating func appendJSONDouble(_ v: Double) {
        if v.isFinite {
            append(contentsOf: v.description.utf8)
        } else if v.isNaN {
            appendASCII("\"NaN\"")
        } else {
            if v < 0 { appendASCII("\"-Infinity\"") } else { appendASCII("\"Infinity\"") }
        }
    }

    /// A JSON string literal, with quotes, escaping `"`, `\` and control characters.
    public mutating func appendJSONString(_ s: String) {
        append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): appendASCII("\\\"")
            case UInt8(ascii: "\\"): appendASCII("\\\\")
            case 10: appendASCII("\\n")
            case 13: appendASCII("\\r")
            case 9: appendASCII("\\t")
            case 0..<32:
                appendASCII("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                append(hex[Int(c >> 4)]); append(hex[Int(c & 15)])
            default: append(c)
            }
        }
        append(UInt8(ascii: "\""))
    }
}
