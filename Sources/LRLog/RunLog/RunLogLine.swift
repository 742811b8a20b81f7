// One run log line <-> one RunRecord (schema in docs/runlog.md).
// Writing formats numbers by hand into a byte buffer (the step path runs ~1000 times a second in the
// trainer); reading general lines goes through the small JSON parser, step and eval lines through
// `RunLogLineParser`'s byte scanner.

import LRCommand

/// Decodes lines one at a time with one parser: a stream of lines (an attached run's pushed records) interns its
/// metric names once instead of once a line. One thread uses it.
public final class RunLogLineDecoder {
    private let parser = RunLogLineParser()

    public init() {}

    /// Decodes one line (without its newline); throws as `RunLogLine.decode`.
    public func decode(_ line: UnsafeBufferPointer<UInt8>) throws -> RunRecord {
        guard let start = line.baseAddress, !line.isEmpty else { throw LogError("empty line") }
        var sink = RecordCollector()
        switch parser.parse(start, start + line.count, into: &sink) {
        case .record: return sink.records[0]
        case .blank: throw LogError("empty line")
        case let .unknownType(t): throw LogError("unknown record type \"\(t)\"")
        case let .invalid(what): throw LogError(what)
        }
    }
}

/// Encoding and decoding of single run log lines.
public enum RunLogLine {
    /// The line for `record`, without the trailing newline.
    public static func encode(_ record: RunRecord) -> String {
        var bytes: [UInt8] = []
        append(record, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes one line. Throws a `LogError` whose message says what is wrong ("not JSON (...)",
    /// "unknown record type \"x\"", "field \"step\": missing").
    public static func decode(_ line: String) throws -> RunRecord {
        var text = line
        return try text.withUTF8 { b in try RunLogLineDecoder().decode(b) }
    }

    // MARK: - Encoding

    static func append(_ record: RunRecord, to b: inout [UInt8]) {
        switch record {
        case let .header(h): appendHeader(h, to: &b)
        case let .step(s): appendStep(s, to: &b)
        case let .eval(e): appendEval(e, to: &b)
        case let .metrics(m): appendMetricsRecord(m, to: &b)
        case let .event(e): appendEvent(e, to: &b)
        case let .end(e): appendEnd(e, to: &b)
        }
    }

    static func appendHeader(_ h: RunHeader, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"header\",\"schema\":"); b.appendInt(h.schema)
        b.appendASCII(",\"lrtop_version\":"); b.appendJSONString(h.lrtopVersion)
        b.appendASCII(",\"start_time\":"); b.appendJSONString(h.startTime)
        b.appendASCII(",\"seed\":"); b.appendUInt64(h.seed)
        b.appendASCII(",\"groups\":[")
        for (i, g) in h.groups.enumerated() {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.appendJSONString(g)
        }
        b.appendASCII("],\"steps_per_epoch\":"); b.appendInt(h.stepsPerEpoch)
        if let t = h.totalSteps { b.appendASCII(",\"total_steps\":"); b.appendInt(t) }
        if let e = h.epochBase { b.appendASCII(",\"epoch_base\":"); b.appendInt(e) }
        if let s = h.socket { b.appendASCII(",\"socket\":"); b.appendJSONString(s) }
        b.appendASCII(",\"config\":{")
        for (i, key) in h.config.keys.sorted().enumerated() {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.appendJSONString(key); b.append(UInt8(ascii: ":")); b.appendJSONString(h.config[key]!)
        }
        b.appendASCII("}")
        if let sub = h.subrun {
            b.appendASCII(",\"subrun\":{\"kind\":"); b.appendJSONString(sub.kind.rawValue)
            b.appendASCII(",\"label\":"); b.appendJSONString(sub.label)
            if let from = sub.fromStep { b.appendASCII(",\"from_step\":"); b.appendInt(from) }
            if let parent = sub.parent { b.appendASCII(",\"parent\":"); b.appendJSONString(parent) }
            b.appendASCII("}")
        }
        b.appendASCII("}")
    }

    @inline(__always)
    static func appendStep(_ s: StepRecord, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"step\",\"step\":"); b.appendInt(s.step)
        b.appendASCII(",\"epoch\":"); b.appendInt(s.epoch)
        b.appendASCII(",\"lrs\":"); appendDoubles(s.lrs, to: &b)
        b.appendASCII(",\"loss\":"); b.appendJSONDouble(s.loss)
        b.appendASCII(",\"grad_norm\":"); b.appendJSONDouble(s.gradNorm)
        b.appendASCII(",\"samples_per_sec\":"); b.appendJSONDouble(s.samplesPerSec)
        b.appendASCII(",\"wall_time\":"); b.appendJSONDouble(s.wallTime)
        if !s.metrics.isEmpty { appendMetrics(s.metrics, reserved: StepRecord.reservedKeys, to: &b) }
        b.append(UInt8(ascii: "}"))
    }

    /// Metrics as flat keys after the built-in ones; names a built-in key takes go into a `metrics` object.
    static func appendMetrics(_ metrics: [MetricValue], reserved: Set<String>, to b: inout [UInt8]) {
        var taken = false
        for m in metrics {
            if reserved.contains(m.name) { taken = true; continue }
            b.append(UInt8(ascii: ",")); b.appendJSONString(m.name)
            b.append(UInt8(ascii: ":")); b.appendJSONDouble(m.value)
        }
        guard taken else { return }
        b.appendASCII(",\"metrics\":{")
        var first = true
        for m in metrics where reserved.contains(m.name) {
            if !first { b.append(UInt8(ascii: ",")) }
            first = false
            b.appendJSONString(m.name); b.append(UInt8(ascii: ":")); b.appendJSONDouble(m.value)
        }
        b.append(UInt8(ascii: "}"))
    }

    static func appendMetricsRecord(_ m: MetricsRecord, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"metrics\",\"step\":"); b.appendInt(m.step)
        b.appendASCII(",\"wall_time\":"); b.appendJSONDouble(m.wallTime)
        appendMetrics(m.metrics, reserved: MetricsRecord.reservedKeys, to: &b)
        b.append(UInt8(ascii: "}"))
    }

    static func appendEval(_ e: EvalRecord, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"eval\",\"step\":"); b.appendInt(e.step)
        b.appendASCII(",\"epoch\":"); b.appendInt(e.epoch)
        b.appendASCII(",\"loss\":"); b.appendJSONDouble(e.loss)
        b.appendASCII(",\"accuracy\":"); b.appendJSONDouble(e.accuracy)
        b.appendASCII(",\"wall_time\":"); b.appendJSONDouble(e.wallTime)
        if !e.metrics.isEmpty { appendMetrics(e.metrics, reserved: EvalRecord.reservedKeys, to: &b) }
        b.append(UInt8(ascii: "}"))
    }

    static func appendEvent(_ e: EventRecord, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"event\",\"step\":"); b.appendInt(e.step)
        b.appendASCII(",\"kind\":"); b.appendJSONString(e.kind.rawValue)
        b.appendASCII(",\"text\":"); b.appendJSONString(e.text)
        if let c = e.command { b.appendASCII(",\"command\":"); appendObject(c, to: &b) }
        if let r = e.result { b.appendASCII(",\"result\":"); appendObject(r, to: &b) }
        b.appendASCII(",\"lrs_before\":"); appendDoubles(e.lrsBefore, to: &b)
        b.appendASCII(",\"lrs_after\":"); appendDoubles(e.lrsAfter, to: &b)
        if let m = e.message { b.appendASCII(",\"message\":"); b.appendJSONString(m) }
        b.appendASCII(",\"wall_time\":"); b.appendJSONDouble(e.wallTime)
        b.append(UInt8(ascii: "}"))
    }

    static func appendEnd(_ e: EndRecord, to b: inout [UInt8]) {
        b.appendASCII("{\"type\":\"end\",\"reason\":"); b.appendJSONString(e.reason.rawValue)
        b.appendASCII(",\"step\":"); b.appendInt(e.step)
        b.appendASCII(",\"epoch\":"); b.appendInt(e.epoch)
        if let v = e.finalLoss { b.appendASCII(",\"final_loss\":"); b.appendJSONDouble(v) }
        if let v = e.bestEvalLoss { b.appendASCII(",\"best_eval_loss\":"); b.appendJSONDouble(v) }
        if let v = e.bestAccuracy { b.appendASCII(",\"best_accuracy\":"); b.appendJSONDouble(v) }
        if let v = e.finalAccuracy { b.appendASCII(",\"final_accuracy\":"); b.appendJSONDouble(v) }
        b.appendASCII(",\"wall_time\":"); b.appendJSONDouble(e.wallTime)
        if let m = e.message { b.appendASCII(",\"message\":"); b.appendJSONString(m) }
        b.append(UInt8(ascii: "}"))
    }

    @inline(__always)
    static func appendDoubles(_ values: [Double], to b: inout [UInt8]) {
        b.append(UInt8(ascii: "["))
        for i in values.indices {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.appendJSONDouble(values[i])
        }
        b.append(UInt8(ascii: "]"))
    }

    // MARK: - Decoding general lines

    struct Problem: Error { let message: String }

    /// The record in a parsed JSON object; nil with `unknownType` set when the type is not one we know.
    static func record(from json: JSONValue, unknownType: inout String?) throws -> RunRecord? {
        guard case .object = json else { throw Problem(message: "not a JSON object") }
        guard let type = json["type"]?.string else { throw Problem(message: "no \"type\" field") }
        switch type {
        case "header":
            var config: [String: String] = [:]
            if let c = json["config"] {
                guard case let .object(pairs) = c else { throw Problem(message: "field \"config\": not an object") }
                for (k, v) in pairs {
                    switch v {
                    case let .string(s): config[k] = s
                    case let .number(n): config[k] = n
                    case let .bool(b): config[k] = b ? "true" : "false"
                    case .null: config[k] = ""
                    default: throw Problem(message: "field \"config\": value of \"\(k)\" is not a string")
                    }
                }
            }
            var header = RunHeader(
                schema: try optionalInt(json, "schema") ?? RunHeader.currentSchema,
                lrtopVersion: try optionalString(json, "lrtop_version") ?? "",
                config: config,
                seed: try optionalUInt64(json, "seed") ?? 0,
                startTime: try optionalString(json, "start_time") ?? "",
                groups: try stringArray(json, "groups"),
                stepsPerEpoch: try optionalInt(json, "steps_per_epoch") ?? 0,
                totalSteps: try optionalInt(json, "total_steps"),
                subrun: try subrun(json["subrun"]))
            // Only 0 or 1 means anything; anything else reads as unknown (lrtop's own numbering).
            header.epochBase = try optionalInt(json, "epoch_base").flatMap { (0...1).contains($0) ? $0 : nil }
            header.socket = try optionalString(json, "socket")
            return .header(header)
        case "step":
            return .step(StepRecord(
                step: try requiredInt(json, "step"), epoch: try optionalInt(json, "epoch") ?? 0,
                lrs: try doubleArray(json, "lrs"), loss: try double(json, "loss"),
                gradNorm: try double(json, "grad_norm"), samplesPerSec: try double(json, "samples_per_sec"),
                wallTime: try double(json, "wall_time"), metrics: metrics(json, reserved: StepRecord.reservedKeys)))
        case "eval":
            return .eval(EvalRecord(
                step: try requiredInt(json, "step"), epoch: try optionalInt(json, "epoch") ?? 0,
                loss: try double(json, "loss"), accuracy: try double(json, "accuracy"),
                wallTime: try double(json, "wall_time"), metrics: metrics(json, reserved: EvalRecord.reservedKeys)))
        case "metrics":
            return .metrics(MetricsRecord(step: try requiredInt(json, "step"), wallTime: try double(json, "wall_time"),
                                          metrics: metrics(json, reserved: MetricsRecord.reservedKeys)))
        case "event":
            let kindText = try optionalString(json, "kind") ?? ""
            guard let kind = EventRecord.Kind(rawValue: kindText) else {
                throw Problem(message: "field \"kind\": unknown event kind \"\(kindText)\"")
            }
            return .event(upgraded(EventRecord(
                step: try requiredInt(json, "step"), kind: kind, text: try optionalString(json, "text") ?? "",
                command: decodeObject(json["command"], as: Command.self),
                result: decodeObject(json["result"], as: EventResult.self),
                lrsBefore: try doubleArray(json, "lrs_before"), lrsAfter: try doubleArray(json, "lrs_after"),
                message: try optionalString(json, "message"), wallTime: try double(json, "wall_time"))))
        case "end":
            guard let reasonText = try optionalString(json, "reason") else { throw Problem(message: "field \"reason\": missing") }
            guard let reason = EndReason(rawValue: reasonText) else {
                throw Problem(message: "field \"reason\": unknown end reason \"\(reasonText)\" (expected \(EndReason.spelled))")
            }
            return .end(EndRecord(
                reason: reason, step: try optionalInt(json, "step") ?? 0, epoch: try optionalInt(json, "epoch") ?? 0,
                finalLoss: try optionalDouble(json, "final_loss"), bestEvalLoss: try optionalDouble(json, "best_eval_loss"),
                bestAccuracy: try optionalDouble(json, "best_accuracy"),
                finalAccuracy: try optionalDouble(json, "final_accuracy"),
                wallTime: try double(json, "wall_time"), message: try optionalString(json, "message")))
        default:
            unknownType = type
            return nil
        }
    }

    /// A record's metrics in line order: every key beyond the reserved ones whose value is a number (or NaN,
    /// Infinity, -Infinity, or null for "not known"), and the members of its `metrics` object where it stands. Other
    /// values are not metrics and are ignored, as unknown keys are.
    private static func metrics(_ json: JSONValue, reserved: Set<String>) -> [MetricValue] {
        func number(_ key: String, _ value: JSONValue) -> MetricValue? {
            value.isNull ? MetricValue(key, .nan) : value.double.map { MetricValue(key, $0) }
        }
        guard case let .object(pairs) = json else { return [] }
        var out: [MetricValue] = []
        for (key, value) in pairs {
            if key == MetricCoding.objectKey, case let .object(nested) = value {
                out += nested.compactMap { number($0, $1) }
            } else if !reserved.contains(key), let m = number(key, value) {
                out.append(m)
            }
        }
        return out
    }

    private static func optionalInt(_ json: JSONValue, _ key: String) throws -> Int? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let i = v.int else { throw Problem(message: "field \"\(key)\": not an integer") }
        return i
    }

    private static func requiredInt(_ json: JSONValue, _ key: String) throws -> Int {
        guard let i = try optionalInt(json, key) else { throw Problem(message: "field \"\(key)\": missing") }
        return i
    }

    private static func optionalUInt64(_ json: JSONValue, _ key: String) throws -> UInt64? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let i = v.uint64 else { throw Problem(message: "field \"\(key)\": not an unsigned integer") }
        return i
    }

    /// The header's `subrun` object; an unknown kind is refused, so a sub-run is never mistaken for a run.
    private static func subrun(_ value: JSONValue?) throws -> SubRun? {
        guard let value, !value.isNull else { return nil }
        guard case .object = value else { throw Problem(message: "field \"subrun\": not an object") }
        guard let kindText = try optionalString(value, "kind") else {
            throw Problem(message: "field \"subrun\": no \"kind\"")
        }
        guard let kind = SubRun.Kind(rawValue: kindText) else {
            let known = SubRun.Kind.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem(message: "field \"subrun\": unknown kind '\(kindText)' (known: \(known))")
        }
        return SubRun(kind: kind, label: try optionalString(value, "label") ?? "",
                      fromStep: try optionalInt(value, "from_step"), parent: try optionalString(value, "parent"))
    }

    private static func optionalString(_ json: JSONValue, _ key: String) throws -> String? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let s = v.string else { throw Problem(message: "field \"\(key)\": not a string") }
        return s
    }

    private static func optionalDouble(_ json: JSONValue, _ key: String) throws -> Double? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let d = v.double else { throw Problem(message: "field \"\(key)\": not a number") }
        return d
    }

    /// A number field; missing or null reads as NaN.
    private static func double(_ json: JSONValue, _ key: String) throws -> Double {
        try optionalDouble(json, key) ?? .nan
    }

    private static func doubleArray(_ json: JSONValue, _ key: String) throws -> [Double] {
        guard let v = json[key], !v.isNull else { return [] }
        guard let items = v.array else { throw Problem(message: "field \"\(key)\": not an array") }
        return try items.map { item in
            if item.isNull { return .nan }
            guard let d = item.double else { throw Problem(message: "field \"\(key)\": not an array of numbers") }
            return d
        }
    }

    private static func stringArray(_ json: JSONValue, _ key: String) throws -> [String] {
        guard let v = json[key], !v.isNull else { return [] }
        guard let items = v.array else { throw Problem(message: "field \"\(key)\": not an array") }
        return try items.map { item in
            guard let s = item.string else { throw Problem(message: "field \"\(key)\": not an array of strings") }
            return s
        }
    }
}

extension RunLogLine {
    /// The steps (and epochs) a record may carry: from 0 to 2^53, the integers JSON keeps exact. Beyond that a
    /// number is not a step of any run, and the arithmetic of readers and exporters (step - 1, step + 1) must
    /// never overflow.
    public static let stepRange = 0...(1 << 53)
    /// The longest line a reader accepts: 1 MiB, about 40,000 param groups in a step record.
    public static let maxLineBytes = 1 << 20
    /// The most param groups a step record may hold.
    public static let maxGroups = 4096
    /// The most distinct metric names a log may use; a name beyond them is left out (with a warning), so a log of
    /// made-up names cannot make a reader keep a chart for each.
    public static let maxMetricNames = 1024
    /// The longest metric name, in bytes; a longer one is left out (with a warning).
    public static let maxMetricNameBytes = 256

    /// What is out of range in a decoded record, or nil.
    static func rangeProblem(_ record: RunRecord) -> String? {
        func check(_ name: String, _ v: Int) -> String? {
            stepRange.contains(v) ? nil : "\(name) \(v) is out of range (0...\(stepRange.upperBound))"
        }
        switch record {
        case let .step(r):
            if r.lrs.count > maxGroups { return "\(r.lrs.count) LRs in one step (at most \(maxGroups) param groups)" }
            return check("step", r.step) ?? check("epoch", r.epoch)
        case let .eval(r): return check("step", r.step) ?? check("epoch", r.epoch)
        case let .metrics(r): return check("step", r.step)
        case let .event(r):
            if max(r.lrsBefore.count, r.lrsAfter.count) > maxGroups { return "more than \(maxGroups) LRs in one event" }
            return check("step", r.step)
        case let .end(r): return check("step", r.step) ?? check("epoch", r.epoch)
        case let .header(h):
            if h.groups.count > maxGroups { return "\(h.groups.count) param groups (at most \(maxGroups))" }
            return h.totalSteps.flatMap { check("total_steps", $0) }
        }
    }
}
