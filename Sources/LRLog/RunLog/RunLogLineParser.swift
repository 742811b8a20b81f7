#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives parsed records. Steps arrive as scalars plus borrowed LR and metric buffers, so a columnar sink
/// never materialises a `StepRecord` (and its arrays) per line.
protocol RunRecordSink {
    mutating func header(_ header: RunHeader)
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double, metrics: LineMetrics)
    mutating func eval(_ eval: EvalRecord)
    /// A `metrics` record: scalars logged between steps.
    mutating func metrics(step: Int, wallTime: Double, metrics: LineMetrics)
    mutating func event(_ event: EventRecord)
    mutating func end(_ end: EndRecord)
    /// A hint: about this many lines follow.
    mutating func reserve(lines: Int)
    /// The line numbered `index` (the header is 0) is parsed next.
    mutating func beginLine(_ index: Int)
}

extension RunRecordSink {
    mutating func reserve(lines: Int) {}
    @inline(__always) mutating func beginLine(_ index: Int) {}
}

/// Collects whole records.
struct RecordCollector: RunRecordSink {
    var records: [RunRecord] = []
    mutating func header(_ header: RunHeader) { records.append(.header(header)) }
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double, metrics: LineMetrics) {
        records.append(.step(StepRecord(step: step, epoch: epoch, lrs: Array(lrs), loss: loss, gradNorm: gradNorm,
                                        samplesPerSec: samplesPerSec, wallTime: wallTime, metrics: metrics.materialized())))
    }
    mutating func eval(_ eval: EvalRecord) { records.append(.eval(eval)) }
    mutating func metrics(step: Int, wallTime: Double, metrics: LineMetrics) {
        records.append(.metrics(MetricsRecord(step: step, wallTime: wallTime, metrics: metrics.materialized())))
    }
    mutating func event(_ event: EventRecord) { records.append(.event(event)) }
    mutating func end(_ end: EndRecord) { records.append(.end(end)) }
}

/// Collects whole records with the number of the line each came from (a line that holds no record, a blank or
/// malformed one, has no entry).
struct NumberedRecordCollector: RunRecordSink {
    var inner = RecordCollector()
    var lines: [Int] = []
    private var line = 0
    mutating func beginLine(_ index: Int) { line = index }
    private mutating func took() { lines.append(line) }
    mutating func header(_ header: RunHeader) { inner.header(header); took() }
    mutating func step(step: Int, epoch: Int, lrs: UnsafeBufferPointer<Double>, loss: Double, gradNorm: Double,
                       samplesPerSec: Double, wallTime: Double, metrics: LineMetrics) {
        inner.step(step: step, epoch: epoch, lrs: lrs, loss: loss, gradNorm: gradNorm, samplesPerSec: samplesPerSec,
                   wallTime: wallTime, metrics: metrics)
        took()
    }
    mutating func eval(_ eval: EvalRecord) { inner.eval(eval); took() }
    mutating func metrics(step: Int, wallTime: Double, metrics: LineMetrics) {
        inner.metrics(step: step, wallTime: wallTime, metrics: metrics); took()
    }
    mutating func event(_ event: EventRecord) { inner.event(event); took() }
    mutating func end(_ end: EndRecord) { inner.end(end); took() }
}

/// The metric names of one log, interned: a line's keys are looked up by their bytes, so a million lines of 20
/// metrics make 20 strings, not 20 million. Ids count from 0 in order of first appearance. A name longer than
/// `RunLogLine.maxMetricNameBytes`, or beyond the first `RunLogLine.maxMetricNames`, gets no id.
final class MetricNameTable {
    private var table = TagTable()
    private(set) var names: [String] = []
    /// What the last refusal was (its kind and a sentence), for the reader's warning.
    private(set) var refusal: (kind: String, text: String)?

    @inline(__always)
    func id(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        if let i = table.lookup(p, n) { return Int32(i) }
        return add(p, n)
    }

    /// The id of the metric at `position` in its record (0 for the first): records repeat their keys in the same
    /// order line after line, so the key is first compared with the one at that position last time (a compare
    /// instead of a hash and a probe).
    @inline(__always)
    func id(_ p: UnsafePointer<UInt8>, _ n: Int, position: Int) -> Int32? {
        if position < expected.count {
            let e = Int(expected[position])
            if e >= 0, table.keys[e].count == n,
               table.keys[e].withUnsafeBufferPointer({ RunLogLineParser.sameBytes($0.baseAddress!, p, n) }) {
                return Int32(e)
            }
        }
        guard let id = id(p, n) else { return nil }
        if position < expected.count { expected[position] = id } else if position == expected.count { expected.append(id) }
        return id
    }

    /// The id each position of the last record held.
    private var expected: [Int32] = []

    func id(_ name: String) -> Int32? {
        var text = name
        return text.withUTF8 { b in id(b.baseAddress ?? UnsafePointer(bitPattern: 1)!, b.count) }
    }

    @inline(never)
    private func add(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        let name = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        guard n <= RunLogLine.maxMetricNameBytes else {
            refusal = ("long", "metric name of \(n) bytes (\"\(name.prefix(40))…\") is longer than \(RunLogLine.maxMetricNameBytes); such metrics are left out")
            return nil
        }
        guard names.count < RunLogLine.maxMetricNames else {
            refusal = ("many", "metric \"\(name.prefix(60))\" is beyond the first \(RunLogLine.maxMetricNames) metric names; later names are left out")
            return nil
        }
        var isNew = false
        let i = table.index(p, n, isNew: &isNew)
        names.append(name)
        return Int32(i)
    }

    /// Takes the refusal to report (each kind is reported once per log by the parser).
    func takeRefusal() -> (kind: String, text: String)? {
        defer { refusal = nil }
        return refusal
    }
}

/// The metrics of the line being parsed, borrowed from the parser: ids into its name table and their values.
struct LineMetrics {
    let ids: UnsafeBufferPointer<Int32>
    let values: UnsafeBufferPointer<Double>
    let names: MetricNameTable

    var count: Int { ids.count }
    var isEmpty: Bool { ids.isEmpty }
    @inline(__always) func name(_ i: Int) -> String { names.names[Int(ids[i])] }

    /// As values with their names (for whole records).
    func materialized() -> [MetricValue] {
        (0..<count).map { MetricValue(name($0), values[$0]) }
    }
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
    private static let seenStep: UInt32 = 1, seenLoss: UInt32 = 2, seenAccuracy: UInt32 = 4, seenGradNorm: UInt32 = 8
    private static let seenSamplesPerSec: UInt32 = 16, seenEpoch: UInt32 = 32
    /// The "type" of the last record `parse` delivered.
    private(set) var lastType = ""

    /// The metrics of the line being scanned: ids into `metricNames` and values.
    let metricNames = MetricNameTable()
    private var metricIDs: UnsafeMutablePointer<Int32>
    private var metricValues: UnsafeMutablePointer<Double>
    private var metricCapacity = 16
    private var metricCount = 0
    /// A problem with the last line's metrics that did not stop the record (a name left out), for its warning.
    private(set) var lineNote: String?
    private var notedKinds = Set<String>()

    init() {
        lrs = .allocate(capacity: lrCapacity)
        metricIDs = .allocate(capacity: metricCapacity)
        metricValues = .allocate(capacity: metricCapacity)
    }
    deinit {
        lrs.deallocate()
        metricIDs.deallocate()
        metricValues.deallocate()
    }

    private var lineMetrics: LineMetrics {
        LineMetrics(ids: UnsafeBufferPointer(start: metricIDs, count: metricCount),
                    values: UnsafeBufferPointer(start: metricValues, count: metricCount), names: metricNames)
    }

    /// The metric `k ..< k+n` = `v` of the line being parsed; a name that gets no id, or one too many, is left out.
    @inline(__always)
    private func pushMetric(_ k: UnsafePointer<UInt8>, _ n: Int, _ v: Double) {
        guard let id = metricNames.id(k, n, position: metricCount) else { noteRefusal(); return }
        pushMetric(id: id, v)
    }

    private func pushMetric(literal: StaticString, _ v: Double) {
        pushMetric(literal.utf8Start, literal.utf8CodeUnitCount, v)
    }

    /// Metrics are kept at float32 precision, whichever record and path they come from (docs/runlog.md, "Metrics").
    private func pushMetric(id: Int32, _ v: Double) {
        // No limit per record: a line is at most `RunLogLine.maxLineBytes`, so its metrics are too.
        if metricCount == metricCapacity {
            let ids = UnsafeMutablePointer<Int32>.allocate(capacity: metricCapacity * 2)
            let values = UnsafeMutablePointer<Double>.allocate(capacity: metricCapacity * 2)
            ids.update(from: metricIDs, count: metricCount)
            values.update(from: metricValues, count: metricCount)
            metricIDs.deallocate(); metricValues.deallocate()
            metricIDs = ids; metricValues = values
            metricCapacity *= 2
        }
        metricIDs[metricCount] = id
        metricValues[metricCount] = Double(Float(v))
        metricCount += 1
    }

    /// Sets the line's note, once per kind of problem in a log (a log of bad names would otherwise say it on
    /// every line).
    private func note(kind: String, _ text: String) {
        guard notedKinds.insert(kind).inserted else { return }
        lineNote = text
    }

    /// Metrics of a record the general parser read: through the name table, as the scanner's are.
    private func pushMetrics(_ metrics: [MetricValue]) {
        for m in metrics {
            guard let id = metricNames.id(m.name) else { noteRefusal(); continue }
            pushMetric(id: id, m.value)
        }
    }

    private func noteRefusal() {
        guard let (kind, text) = metricNames.takeRefusal() else { return }
        note(kind: kind, text)
    }

    /// Parses the line `start ..< end` (no newline) into `sink`.
    func parse<S: RunRecordSink>(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, into sink: inout S) -> LineOutcome {
        lineNote = nil
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
                      gradNorm: gradNorm, samplesPerSec: samplesPerSec, wallTime: wallTime, metrics: lineMetrics)
            return .record
        case .eval:
            lastType = "eval"
            sink.eval(EvalRecord(step: step, epoch: epoch, loss: loss, accuracy: accuracy, wallTime: wallTime,
                                 metrics: lineMetrics.materialized()))
            return .record
        case .metrics:
            lastType = "metrics"
            sink.metrics(step: step, wallTime: wallTime, metrics: lineMetrics)
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
            metricCount = 0
            switch record {
            case let .header(h): sink.header(h)
            case let .step(r):
                pushMetrics(r.metrics)
                    r.lrs.withUnsafeBufferPointer { b in
                    sink.step(step: r.step, epoch: r.epoch, lrs: b, loss: r.loss, gradNorm: r.gradNorm,
                              samplesPerSec: r.samplesPerSec, wallTime: r.wallTime, metrics: lineMetrics)
                }
            case var .eval(r):
                pushMetrics(r.metrics)
                    r.metrics = lineMetrics.materialized()
                sink.eval(r)
            case let .metrics(r):
                pushMetrics(r.metrics)
                    sink.metrics(step: r.step, wallTime: r.wallTime, metrics: lineMetrics)
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

    private enum ScanResult { case step, eval, metrics, other }

    @inline(__always)
    private static func skipSpace(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) {
        while p < e, p.pointee == 32 || p.pointee == 9 { p += 1 }
    }

    @inline(__always)
    private static func key(_ k: UnsafePointer<UInt8>, _ n: Int, is literal: StaticString) -> Bool {
        // The first byte first: a metric's name rarely starts like the built-in key of its length.
        n == literal.utf8CodeUnitCount && k[0] == literal.utf8Start[0] && sameBytes(k, literal.utf8Start, n)
    }

    /// Whether n bytes at a and b are equal: short keys without a call to memcmp.
    @inline(__always)
    static func sameBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard n <= 32 else { return memcmp(a, b, n) == 0 }
        var i = 0
        while i + 8 <= n {
            if UnsafeRawPointer(a + i).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < n {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
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
        var kind = 0  // 1 step, 2 eval, 3 metrics
        seen = 0
        lrCount = 0
        metricCount = 0
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
                else if e - p >= 9, memcmp(p, "\"metrics\"", 9) == 0 { kind = 3; p += 9 }
                else { return .other }
            case 4 where Self.key(k, n, is: "step"):
                guard let v = NumberParser.parseInt(&p, e), RunLogLine.stepRange.contains(v) else { return .other }
                step = v
                seen |= Self.seenStep
            case 4 where Self.key(k, n, is: "loss"):
                guard let v = Self.number(&p, e) else { return .other }
                if kind == 3 { pushMetric(literal: "loss", v) } else { loss = v; seen |= Self.seenLoss }
            case 5 where Self.key(k, n, is: "epoch"):
                guard let v = NumberParser.parseInt(&p, e), RunLogLine.stepRange.contains(v) else { return .other }
                if kind == 3 { pushMetric(literal: "epoch", Double(v)) } else { epoch = v; seen |= Self.seenEpoch }
            case 8 where Self.key(k, n, is: "accuracy"):
                guard let v = Self.number(&p, e) else { return .other }
                if kind == 1 || kind == 3 { pushMetric(literal: "accuracy", v) } else { accuracy = v; seen |= Self.seenAccuracy }
            case 9 where Self.key(k, n, is: "grad_norm"):
                guard let v = Self.number(&p, e) else { return .other }
                if kind >= 2 { pushMetric(literal: "grad_norm", v) } else { gradNorm = v; seen |= Self.seenGradNorm }
            case 9 where Self.key(k, n, is: "wall_time"):
                guard let v = Self.number(&p, e) else { return .other }
                wallTime = v
            case 15 where Self.key(k, n, is: "samples_per_sec"):
                guard let v = Self.number(&p, e) else { return .other }
                if kind >= 2 { pushMetric(literal: "samples_per_sec", v) } else { samplesPerSec = v; seen |= Self.seenSamplesPerSec }
            case 7 where Self.key(k, n, is: "metrics") && p.pointee == UInt8(ascii: "{"):
                guard scanMetricsObject(&p, e) else { return .other }
            default:
                // Any other key with a number is a metric; other values are skipped, as unknown keys are.
                if let v = Self.metricNumber(&p, e) {
                    pushMetric(k, n, v)
                } else {
                    guard Self.skipValue(&p, e) else { return .other }
                }
            }
            Self.skipSpace(&p, e)
            guard p < e else { return .other }
            if p.pointee == UInt8(ascii: ",") { p += 1; continue }
            if p.pointee == UInt8(ascii: "}") { p += 1; break }
            return .other
        }
        Self.skipSpace(&p, e)
        guard p == e, seen & Self.seenStep != 0 else { return .other }
        // A key that is built in for one record type is a metric in another (a step's `accuracy`, an eval's
        // `grad_norm`, anything but `step` and `wall_time` in a metrics record), as the general parser reads them:
        // in line order once the type is known (writers put it first), else here.
        switch kind {
        case 1:
            if seen & Self.seenAccuracy != 0 { pushMetric(literal: "accuracy", accuracy) }
        case 2:
            if seen & Self.seenGradNorm != 0 { pushMetric(literal: "grad_norm", gradNorm) }
            if seen & Self.seenSamplesPerSec != 0 { pushMetric(literal: "samples_per_sec", samplesPerSec) }
        case 3:
            if seen & Self.seenEpoch != 0 { pushMetric(literal: "epoch", Double(epoch)) }
            if seen & Self.seenLoss != 0 { pushMetric(literal: "loss", loss) }
            if seen & Self.seenAccuracy != 0 { pushMetric(literal: "accuracy", accuracy) }
            if seen & Self.seenGradNorm != 0 { pushMetric(literal: "grad_norm", gradNorm) }
            if seen & Self.seenSamplesPerSec != 0 { pushMetric(literal: "samples_per_sec", samplesPerSec) }
        default:
            break
        }
        switch kind {
        case 1: return .step
        case 2: return .eval
        case 3: return .metrics
        default: return .other
        }
    }

    /// A metric's value at `p`: a number, NaN/Infinity as strings or tokens, or null (NaN); nil (and `p` unmoved)
    /// for anything else: a string, a bool, an array, an object.
    @inline(__always)
    private static func metricNumber(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Double? {
        let c = p.pointee
        guard c == UInt8(ascii: "-") || isDigit(c) || c == UInt8(ascii: "\"") || c == UInt8(ascii: "N")
                || c == UInt8(ascii: "I") || c == UInt8(ascii: "n") else { return nil }
        var q = p
        guard let v = NumberParser.parseFloat(&q, e) ?? special(&q, e) else { return nil }
        // The value must end there: `"NaNa"` or `12abc` is not a number.
        var r = q
        skipSpace(&r, e)
        guard r < e, r.pointee == UInt8(ascii: ",") || r.pointee == UInt8(ascii: "}") else { return nil }
        p = q
        return v
    }

    /// The members of a `metrics` object, each a metric when its value is a number; false when the object is
    /// malformed (the general parser then reads the line).
    private func scanMetricsObject(_ p: inout UnsafePointer<UInt8>, _ e: UnsafePointer<UInt8>) -> Bool {
        p += 1  // {
        while true {
            Self.skipSpace(&p, e)
            guard p < e else { return false }
            if p.pointee == UInt8(ascii: "}") { p += 1; return true }
            guard p.pointee == UInt8(ascii: "\"") else { return false }
            p += 1
            let k = p
            while p < e, p.pointee != UInt8(ascii: "\"") {
                if p.pointee == UInt8(ascii: "\\") { return false }
                p += 1
            }
            guard p < e else { return false }
            let n = p - k
            p += 1
            Self.skipSpace(&p, e)
            guard p < e, p.pointee == UInt8(ascii: ":") else { return false }
            p += 1
            Self.skipSpace(&p, e)
            guard p < e else { return false }
            if let v = Self.metricNumber(&p, e) { pushMetric(k, n, v) } else if !Self.skipValue(&p, e) { return false }
            Self.skipSpace(&p, e)
            guard p < e else { return false }
            if p.pointee == UInt8(ascii: ",") { p += 1; continue }
            if p.pointee == UInt8(ascii: "}") { p += 1; return true }
            return false
        }
    }
}
