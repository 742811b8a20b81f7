#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A small general JSON parser for the rare lines of a run log (header, event, end) and for lines the
// fast step parser does not recognise. Numbers keep their text so that integers such as a 64-bit seed
// stay exact. Accepts the bare tokens NaN, Infinity and -Infinity that Python's json module writes.

enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(pairs) = self { return pairs.last(where: { $0.0 == key })?.1 }
        return nil
    }

    /// A number, or one of the strings/tokens "NaN", "Infinity", "-Infinity".
    var double: Double? {
        switch self {
        case let .number(text):
            var t = text
            return t.withUTF8 { b in
                var p = b.baseAddress!
                guard let v = NumberParser.parseDouble(&p, b.baseAddress! + b.count), p == b.baseAddress! + b.count else { return nil }
                return v
            }
        case let .string(s):
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default: return nil
            }
        default: return nil
        }
    }

    var int: Int? {
        guard case let .number(text) = self else { return nil }
        if let v = Int(text) { return v }
        if let d = double, d == d.rounded(), abs(d) < 9e18 { return Int(d) }
        return nil
    }

    var uint64: UInt64? {
        guard case let .number(text) = self else { return nil }
        return UInt64(text)
    }

    var string: String? { if case let .string(s) = self { return s }; return nil }

    var array: [JSONValue]? { if case let .array(a) = self { return a }; return nil }

    var isNull: Bool { if case .null = self { return true }; return false }
}

struct JSONParseError: Error { let message: String }

struct JSONParser {
    private var p: UnsafePointer<UInt8>
    private let end: UnsafePointer<UInt8>
    private let start: UnsafePointer<UInt8>
    private var depth = 0

    /// Parses exactly one JSON value filling the range (surrounding white space allowed).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw JSONParseError(message: "empty") }
        var parser = JSONParser(p: base, end: base + bytes.count, start: base)
        let value = try parser.value()
        parser.skipSpace()
        if parser.p != parser.end { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    static func parse(_ text: String) throws -> JSONValue {
        var t = text
        return try t.withUTF8 { b in try parse(b) }
    }

    private func error(_ what: String) -> JSONParseError {
        JSONParseError(message: "\(what) at column \(p - start + 1)")
    }

    private mutating func skipSpace() {
        while p < end, p.pointee == 32 || p.pointee == 9 || p.pointee == 10 || p.pointee == 13 { p += 1 }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard end - p >= n else { return false }
        if memcmp(p, word.utf8Start, n) == 0 { p += n; return true }
        return false
    }

    private mutating func value() throws -> JSONValue {
        skipSpace()
        guard p < end else { throw error("unexpected end of line") }
        switch p.pointee {
        case UInt8(ascii: "{"):
            depth += 1
            if depth > 64 { throw error("nested too deeply") }
            p += 1
            var pairs: [(String, JSONValue)] = []
            skipSpace()
            if p < end, p.pointee == UInt8(ascii: "}") { p += 1; depth -= 1; return .object(pairs) }
            while true {
                skipSpace()
                guard p < end, p.pointee == UInt8(ascii: "\"") else { throw error("expected a key") }
                let key = try string()
                skipSpace()
                guard p < end, p.pointee == UInt8(ascii: ":") else { throw error("expected ':'") }
                p += 1
                pairs.append((key, try value()))
                skipSpace()
                guard p < end else { throw error("unexpected end of line") }
                if p.pointee == UInt8(ascii: ",") { p += 1; continue }
                if p.pointee == UInt8(ascii: "}") { p += 1; depth -= 1; return .object(pairs) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            if depth > 64 { throw error("nested too deeply") }
            p += 1
            var items: [JSONValue] = []
            skipSpace()
            if p < end, p.pointee == UInt8(ascii: "]") { p += 1; depth -= 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard p < end else { throw error("unexpected end of line") }
                if p.pointee == UInt8(ascii: ",") { p += 1; continue }
                if p.pointee == UInt8(ascii: "]") { p += 1; depth -= 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            if literal("true") { return .bool(true) }
        case UInt8(ascii: "f"):
            if literal("false") { return .bool(false) }
        case UInt8(ascii: "n"):
            if literal("null") { return .null }
        case UInt8(ascii: "N"):
            if literal("NaN") { return .string("NaN") }
        case UInt8(ascii: "I"):
            if literal("Infinity") { return .string("Infinity") }
        case UInt8(ascii: "-") where end - p > 1 && p[1] == UInt8(ascii: "I"):
            if literal("-Infinity") { return .string("-Infinity") }
        default:
            let s = p
            var q = p
            if q < end, q.pointee == UInt8(ascii: "-") { q += 1 }
            guard q < end, isDigit(q.pointee) else { break }
            while q < end, isDigit(q.pointee) || q.pointee == UInt8(ascii: ".") || q.pointee | 0x20 == UInt8(ascii: "e")
                    || q.pointee == UInt8(ascii: "+") || q.pointee == UInt8(ascii: "-") { q += 1 }
            p = q
            return .number(String(decoding: UnsafeBufferPointer(start: s, count: q - s), as: UTF8.self))
        }
        throw error("unexpected character")
    }

    private mutating func string() throws -> String {
        p += 1  // opening quote
        let s = p
        while p < end, p.pointee != UInt8(ascii: "\""), p.pointee != UInt8(ascii: "\\") { p += 1 }
        guard p < end else { throw error("unterminated string") }
        if p.pointee == UInt8(ascii: "\"") {
            let text = String(decoding: UnsafeBufferPointer(start: s, count: p - s), as: UTF8.self)
            p += 1
            return text
        }
        var bytes = Array(UnsafeBufferPointer(start: s, count: p - s))
        while p < end {
            let c = p.pointee
            if c == UInt8(ascii: "\"") { p += 1; return String(decoding: bytes, as: UTF8.self) }
            if c != UInt8(ascii: "\\") { bytes.append(c); p += 1; continue }
            p += 1
            guard p < end else { break }
            let e = p.pointee
            p += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
            case UInt8(ascii: "b"): bytes.append(8)
            case UInt8(ascii: "f"): bytes.append(12)
            case UInt8(ascii: "n"): bytes.append(10)
            case UInt8(ascii: "r"): bytes.append(13)
            case UInt8(ascii: "t"): bytes.append(9)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800, scalar < 0xDC00, end - p >= 6, p[0] == UInt8(ascii: "\\"), p[1] == UInt8(ascii: "u") {
                    p += 2
                    let low = try hex4()
                    if low >= 0xDC00, low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        throw error("invalid surrogate pair")
                    }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                bytes.append(contentsOf: String(Character(u)).utf8)
            default: throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard end - p >= 4 else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p.pointee
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw error("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            p += 1
        }
        return v
    }
}
