import Foundation
import LRLog

/// One protocol message as a JSON line, written field by field: numbers that JSON lacks (NaN, infinities) become
/// null, strings are escaped by the run log's encoder, so no value can break the framing.
struct JSONLine {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var first = true

    init(type: String) { add("type", type) }
    /// An object without a type (a member of a message).
    init() {}

    private mutating func key(_ k: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.appendJSONString(k)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func add(_ k: String, _ v: String?) {
        key(k)
        if let v { bytes.appendJSONString(v) } else { bytes += Array("null".utf8) }
    }
    mutating func add(_ k: String, _ v: Int?) { key(k); bytes += Array((v.map(String.init) ?? "null").utf8) }
    mutating func add(_ k: String, _ v: Bool) { key(k); bytes += Array((v ? "true" : "false").utf8) }
    mutating func add(_ k: String, _ v: Double?) { key(k); Self.append(v, to: &bytes) }
    mutating func add(_ k: String, _ v: [Double]) {
        key(k)
        bytes.append(UInt8(ascii: "["))
        for (i, x) in v.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            Self.append(x, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }
    mutating func add(_ k: String, strings v: [String]) {
        key(k)
        bytes.append(UInt8(ascii: "["))
        for (i, x) in v.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.appendJSONString(x)
        }
        bytes.append(UInt8(ascii: "]"))
    }
    /// A value that is JSON already (an encoded object, a client's id as it sent it).
    mutating func add(_ k: String, raw: [UInt8]) { key(k); bytes += raw }
    mutating func add<T: Encodable>(_ k: String, encoded value: T) {
        guard let data = try? Self.encoder.encode(value) else { return }
        add(k, raw: Array(data))
    }

    /// The finished line, newline included.
    var line: [UInt8] { bytes + [UInt8(ascii: "}"), 10] }
    /// The finished object, for a message's member.
    var object: [UInt8] { bytes + [UInt8(ascii: "}")] }

    private static func append(_ v: Double?, to b: inout [UInt8]) {
        guard let v, v.isFinite else { b += Array("null".utf8); return }
        b += Array("\(v)".utf8)
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()
}
