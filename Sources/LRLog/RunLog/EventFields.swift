import Foundation
import LRCommand

// An event's structured fields in a run log line: `command` (the parsed command, in the record form of
// spec/steering_vectors.json) and `result` (its outcome as data). Both are JSON objects written and read with
// Foundation's coders (events are a few lines in a run; the step path never comes here). Older logs have neither:
// `upgraded` derives them from the text and message they do have, in this one place, so that no reader of records
// ever has to read prose.

extension RunLogLine {
    /// `value` as a JSON object with sorted keys (NaN and infinities as the log's strings).
    static func appendObject<T: Encodable>(_ value: T, to b: inout [UInt8]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        guard let data = try? encoder.encode(value) else { b.appendASCII("null"); return }
        b.append(contentsOf: data)
    }

    /// A field's object decoded as `T`; nil when it is absent, or does not hold what `T` requires (a command the
    /// language refuses included): the event is kept and read as an older log's would be.
    static func decodeObject<T: Decodable>(_ value: JSONValue?, as type: T.Type) -> T? {
        guard let value, !value.isNull else { return nil }
        var bytes: [UInt8] = []
        value.append(to: &bytes)
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity",
                                                                        negativeInfinity: "-Infinity", nan: "NaN")
        return try? decoder.decode(T.self, from: Data(bytes))
    }

    /// An event of an older log (schema 1, or a writer that does not set them) with `command` and `result`
    /// filled in from its `text` and `message`, as that version wrote them.
    static func upgraded(_ event: EventRecord) -> EventRecord {
        var e = event
        if e.command == nil, e.kind == .command || e.kind == .error {
            e.command = try? CommandParser.parse(e.text)
        }
        guard e.result == nil else { return e }
        let message = e.message ?? ""
        var result = EventResult()
        switch (e.kind, e.command) {
        case (.command, .rollback?):
            result.rolledBackTo = e.step
        case (.command, .findLR?):
            // "subruns/find-lr-40: 87 steps, ..."
            if message.hasPrefix("subruns/"), let colon = message.firstIndex(of: ":") {
                result.subruns = [String(message[..<colon])]
            }
        case (.guardTrip, _):
            if message.contains("rolled back to step") { result.rolledBackTo = e.step }
            if message.contains("paused") { result.paused = true }
        default: break
        }
        if result != EventResult() { e.result = result }
        return e
    }
}

extension JSONValue {
    /// The value as JSON text again (numbers as they were written).
    func append(to b: inout [UInt8]) {
        switch self {
        case .null: b.appendASCII("null")
        case let .bool(v): if v { b.appendASCII("true") } else { b.appendASCII("false") }
        case let .number(text): b.append(contentsOf: text.utf8)
        case let .string(s): b.appendJSONString(s)
        case let .array(items):
            b.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                item.append(to: &b)
            }
            b.append(UInt8(ascii: "]"))
        case let .object(pairs):
            b.append(UInt8(ascii: "{"))
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                b.appendJSONString(key)
                b.append(UInt8(ascii: ":"))
                value.append(to: &b)
            }
            b.append(UInt8(ascii: "}"))
        }
    }
}
