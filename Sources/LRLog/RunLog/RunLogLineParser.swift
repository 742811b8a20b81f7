#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives parsed records. Steps arrive as scalars plus a borrowed LR buffer, so a columnar sink
/// never materialises a `StepRecord` (and its `lrs` array) per line.
protocol RunRecordSink {
    mutating func header(_ header: RunHeader)
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double)
    mutating func eval(_ eval: EvalRecord)
    mutating func event(_ event: EventRecord)
    mutating func end(_ end: EndRecord)
    /// A hint: about this many lines follow.
    mutating func reserve(lines: Int)
}

extension RunRecordSink {
    mutating func reserve(lines: Int) {}
}

/// Collects whole records.
struct RecordCollector: RunRecordSink {
    var records: [RunRecord] = []
    mutating func header(_ header: RunHeader) { records.append(.header(header)) }
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double) {
        records.append(.step(StepRecord(step: step, epoch: epoch, lrs: Array(lrs), loss: loss, gradNorm: gradNorm,
                                        samplesPerSec: samplesPerSec, wallTime: wallTime)))
    }
    mutating func eval(_ eval: EvalRecord) { records.append(.eval(eval)) }
    mutating func event(_ event: EventRecord) { records.append(.event(event)) }
    mutating func end(_ end: EndRecord) { records.append(.end(end)) }
}

enum LineOutcome: Equatable {
    case record
    case blank
    case unknownType(String)
    case invalid(String)
}

/// Parses run log lines. Step and eval lines (nearly all of a log) go through a byte scanner that
/// knows their keys, in any order, and skips unknown keys; every other line, and any line the scanner
/// gives up on, goes through the general JSON parser. Not thread-safe: one parser per reading thread.
final class RunLogLineParser {
    private var lrs: UnsafeMutablePointer<Double>
    private var lrCapacity = 16
    private var lrCount = 0

    // Fields of the line being scanned.
    private var step = 0, epoch = 0
    private var loss = Double.nan, gradNorm = Double.nan, samplesPerSec = Double.nan, wallTime = Double.nan
    private var accuracy = Double.nan
    private var seen: UInt32 = 0
    private static let seenStep: UInt32 = 1
    /// The "type" of the last record `parse` delivered.
    private(set) var lastType = ""

    init() { lrs = .allocate(capacity: lrCapacity) }
    deinit { lrs.deallocate() }

    /// Parses the line `start ..< end` (no newline) into `sink`.
    func parse<S: RunRecordSink>(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, into sink: inout S) -> LineOutcome {
        var e = end
        if e > start, e[-1] == 13 { e -= 1 }  // CRLF
        var s = start
        while s < e, s.pointee == 32 || s.pointee == 9 { s += 1 }
        if s == e { return .blank }
        // A UTF-8 byte-order mark (a log saved by an editor) is not part of the record.
        if e - s >= 3, s[0] == 0xEF, s[1] == 0xBB, s[2] == 0xBF { s += 3 }
        // No record of lrtop's comes near this; a crafted line must not take memory hundreds of times its size.
        if e - s > RunLogLine.maxLineBytes {
            return .invalid("line of \(e - s) bytes is longer than any record (at most \(RunLogLine.maxLineBytes)); skipped")
        }
        switch scan(s, e) {
        case .step:
            lastType = "step"
            sink.step(step: step, epoch: epoch, lrs: UnsafeBufferPointer(start: lrs, count: lrCount), loss: loss,
                      gradNorm: gradNorm, samplesPerSec: samplesPerSec, wallTime: wallTime)
            return .record
        case .eval:
            lastType = "eval"
            sink.eval(EvalRecord(step: step, epoch: epoch, loss: loss, accuracy: accuracy, wallTime: wallTime))
            return .record
        case .other:
            return general(s, e, into: &sink)
        }
    }

    private func general<S: RunRecordSink>(_ s: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>, into sink: inout S) -> LineOutcome {
        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeBufferPointer(start: s, count: e - s))
        } catch let error as JSONParseError {
            return .invalid("not JSON (\(error.message))")
        } catch {
            return .invalid("not JSON")
        }
        var unknown: String?
        do {
            guard let record = try RunLogLine.record(from: json, unknownType: &unknown) else {
                return .unknownType(unknown ?? "")
            }
            if let problem = RunLogLine.rangeProblem(record) { return .invalid(problem) }
            lastType = record.typeName
            switch record {
            case let .header(h): sink.header(h)
            case let .step(r):
                r.lrs.withUnsafeBufferPointer { b in
                    sink.step(step: r.step, epoch: r.epoch, lrs: b, loss: r.loss, gradNorm: r.gradNorm,
                              samplesPerSec: r.samplesPerSec, wallTime: r.wallTime)
                }
            case let .eval(r): sink.eval(r)
            case let .event(r): sink.event(r)
            case let .end(r): sink.end(r)
            }
            return .record
        } catch let problem as RunLogLine.Problem {
            return .invalid(problem.message)
        } catch {
            return .invalid("\(error)")
        }
    }

    // MARK: - The byte scanner

    private enum ScanResult { case step, eval, other }

    @inline(__always)
    private static func skipSpace(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) {
        while p < e, p.pointee == 32 || p.pointee == 9 { p += 1 }
    }

    @inline(__always)
    private static func key(_ k: UnsafePointer<UInt8>, _ n: Int, is literal: StaticString) -> Bool {
        n == literal.utf8CodeUnitCount && memcmp(k, literal.utf8Start, n) == 0
    }

    /// A number, or NaN/Infinity as JSON strings or bare tokens, or null (NaN).
    @inline(__always)
    private static func number(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Double? {
        if let v = NumberParser.parseDouble(&p, e) { return v }
        return special(&p, e)
    }

    @inline(never)
    private static func special(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Double? {
        var q = p
        let quoted = q < e && q.pointee == UInt8(ascii: "\"")
        if quoted { q += 1 }
        let s = q
        while q < e, q.pointee != UInt8(ascii: "\""), q.pointee != UInt8(ascii: ","), q.pointee != UInt8(ascii: "}"),
              q.pointee != UInt8(ascii: "]"), q.pointee != 32 { q += 1 }
        let word = UnsafeBufferPointer(start: s, count: q - s)
        var value: Double?
        if word.elementsEqual("NaN".utf8) { value = .nan }
        else if word.elementsEqual("Infinity".utf8) { value = .infinity }
        else if word.elementsEqual("-Infinity".utf8) { value = -.infinity }
        else if !quoted, word.elementsEqual("null".utf8) { value = .nan }
        guard let v = value else { return nil }
        if quoted {
            guard q < e, q.pointee == UInt8(ascii: "\"") else { return nil }
            q += 1
        }
        p = q
        return v
    }

    private func pushLR(_ v: Double) {
        if lrCount == lrCapacity {
            let grown = UnsafeMutablePointer<Double>.allocate(capacity: lrCapacity * 2)
            grown.update(from: lrs, count: lrCount)
            lrs.deallocate()
            lrs = grown
            lrCapacity *= 2
        }
        lrs[lrCount] = v
        lrCount += 1
    }

    /// Skips one JSON value of any kind; false if the line ends first.
    private static func skipValue(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Bool {
        var depth = 0
        while p < e {
            let c = p.pointee
            switch c {
            case UInt8(ascii: "\""):
                p += 1
                while p < e, p.pointee != UInt8(ascii: "\"") {
                    if p.pointee == UInt8(ascii: "\\") { p += 1 }
                    p += 1
                }
                if p >= e { return false }
                p += 1
                if depth == 0 { return true }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1; p += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return true }
                depth -= 1; p += 1
                if depth == 0 { return true }
            case UInt8(ascii: ","):
                if depth == 0 { return true }
                p += 1
            default:
                p += 1
            }
        }
        return depth == 0
    }

    private func scan(_ start: UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> ScanResult {
        var p = start
        guard p < e, p.pointee == UInt8(ascii: "{") else { return .other }
        p += 1
        var kind = 0  // 1 step, 2 eval
        seen = 0
        lrCount = 0
        step = 0; epoch = 0
        loss = .nan; gradNorm = .nan; samplesPerSec = .nan; wallTime = .nan; accuracy = .nan
        while true {
            Self.skipSpace(&p, e)
            guard p < e else { return .other }
            if p.pointee == UInt8(ascii: "}") { p += 1; break }
            guard p.pointee == UInt8(ascii: "\"") else { return .other }
            p += 1
            let k = p
            while p < e, p.pointee != UInt8(ascii: "\"") {
                if p.pointee == UInt8(ascii: "\\") { return .other }
                p += 1
            }
            guard p < e else { return .other }
            let n = p - k
            p += 1
            Self.skipSpace(&p, e)
            guard p < e, p.pointee == UInt8(ascii: ":") else { return .other }
            p += 1
            Self.skipSpace(&p, e)
            guard p < e else { return .other }
            switch n {
            case 3 where Self.key(k, n, is: "lrs"):
                guard p.pointee == UInt8(ascii: "[") else { return .other }
                p += 1
                Self.skipSpace(&p, e)
                if p < e, p.pointee == UInt8(ascii: "]") {
                    p += 1
                } else {
                    while true {
                        Self.skipSpace(&p, e)
                        guard let v = Self.number(&p, e) else { return .other }
                        pushLR(v)
                        Self.skipSpace(&p, e)
                        guard p < e else { return .other }
                        if p.pointee == UInt8(ascii: ",") { p += 1; continue }
                        if p.pointee == UInt8(ascii: "]") { p += 1; break }
                        return .other
                    }
                }
            case 4 where Self.key(k, n, is: "type"):
                guard p.pointee == UInt8(ascii: "\"") else { return .other }
                if e - p >= 6, memcmp(p, "\"step\"", 6) == 0 { kind = 1; p += 6 }
                else if e - p >= 6, memcmp(p, "\"eval\"", 6) == 0 { kind = 2; p += 6 }
                else { return .other }
            case 4 where Self.key(k, n, is: "step"):
                guard let v = NumberParser.parseInt(&p, e), RunLogLine.stepRange.contains(v) else { return .other }
                step = v
                seen |= Self.seenStep
            case 4 where Self.key(k, n, is: "loss"):
                guard let v = Self.number(&p, e) else { return .other }
                loss = v
            case 5 where Self.key(k, n, is: "epoch"):
                guard let v = NumberParser.parseInt(&p, e), RunLogLine.stepRange.contains(v) else { return .other }
                epoch = v
            case 8 where Self.key(k, n, is: "accuracy"):
                guard let v = Self.number(&p, e) else { return .other }
                accuracy = v
            case 9 where Self.key(k, n, is: "grad_norm"):
                guard let v = Self.number(&p, e) else { return .other }
                gradNorm = v
            case 9 where Self.key(k, n, is: "wall_time"):
                guard let v = Self.number(&p, e) else { return .other }
                wallTime = v
            case 15 where Self.key(k, n, is: "samples_per_sec"):
                guard let v = Self.number(&p, e) else { return .other }
                samplesPerSec = v
            default:
                guard Self.skipValue(&p, e) else { return .other }
            }
            Self.skipSpace(&p, e)
            guard p < e else { return .other }
            if p.pointee == UInt8(ascii: ",") { p += 1; continue }
            if p.pointee == UInt8(ascii: "}") { p += 1; break }
            return .other
        }
        Self.skipSpace(&p, e)
        guard p == e, seen & Self.seenStep != 0 else { return .other }
        switch kind {
        case 1: return .step
        case 2: return .eval
        default: return .other
        }
    }
}
