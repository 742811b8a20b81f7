/// `RunRecord` as one JSON object with a "type" discriminator: the same shape as a run log line, so
/// Foundation's `JSONDecoder` can read a line (given the NaN string strategy) and `JSONEncoder` write one.
extension RunRecord: Codable {
    private enum TypeKey: String, CodingKey { case type }

    /// The "type" value of each record.
    public var typeName: String {
        switch self {
        case .header: return "header"
        case .step: return "step"
        case .eval: return "eval"
        case .metrics: return "metrics"
        case .event: return "event"
        case .end: return "end"
        }
    }

    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: TypeKey.self).decode(String.self, forKey: .type)
        switch type {
        case "header": self = .header(try RunHeader(from: decoder))
        case "step": self = .step(try StepRecord(from: decoder))
        case "eval": self = .eval(try EvalRecord(from: decoder))
        case "metrics": self = .metrics(try MetricsRecord(from: decoder))
        case "event": self = .event(try EventRecord(from: decoder))
        case "end": self = .end(try EndRecord(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: try decoder.container(keyedBy: TypeKey.self),
                                                   debugDescription: "unknown record type \"\(type)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: TypeKey.self)
        try c.encode(typeName, forKey: .type)
        switch self {
        case let .header(r): try r.encode(to: encoder)
        case let .step(r): try r.encode(to: encoder)
        case let .eval(r): try r.encode(to: encoder)
        case let .metrics(r): try r.encode(to: encoder)
        case let .event(r): try r.encode(to: encoder)
        case let .end(r): try r.encode(to: encoder)
        }
    }
}

// The metrics of step, eval and metrics records are flat keys beside the built-in ones (docs/runlog.md, "Metrics"),
// so their Codable forms are written by hand: the built-in keys through `CodingKeys`, the rest by name.

/// Any key of a JSON object.
struct MetricCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Reading and writing a record's metrics with Foundation's coders.
enum MetricCoding {
    /// The key of the object that holds metrics whose names are taken by a built-in key (or any others).
    static let objectKey = "metrics"

    /// The keys a record of this type reserves: a metric with one of these names lives in the `metrics` object.
    static func reserved<K: CodingKey & CaseIterable>(_ keys: K.Type) -> Set<String> {
        Set(keys.allCases.map(\.stringValue) + ["type", objectKey])
    }

    /// Every numeric key beyond the reserved ones, then the members of the `metrics` object, each set sorted by
    /// name (Foundation's decoder does not keep the line's order). Keys whose values are not numbers are ignored.
    static func decode(from decoder: any Decoder, reserved: Set<String>) throws -> [MetricValue] {
        let c = try decoder.container(keyedBy: MetricCodingKey.self)
        var out = numbers(in: c, skipping: reserved)
        let object = MetricCodingKey(stringValue: objectKey)
        if c.contains(object), let nested = try? c.nestedContainer(keyedBy: MetricCodingKey.self, forKey: object) {
            out += numbers(in: nested, skipping: [])
        }
        return out
    }

    private static func numbers(in c: KeyedDecodingContainer<MetricCodingKey>, skipping: Set<String>) -> [MetricValue] {
        var out: [MetricValue] = []
        for key in c.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !skipping.contains(key.stringValue) {
            if (try? c.decodeNil(forKey: key)) == true { out.append(MetricValue(key.stringValue, .nan)); continue }
            // At float32 precision, as every reader keeps metrics.
            if let v = try? c.decode(Double.self, forKey: key) { out.append(MetricValue(key.stringValue, Double(Float(v)))) }
        }
        return out
    }

    /// Flat keys, and the `metrics` object for names a built-in key takes.
    static func encode(_ metrics: [MetricValue], to encoder: any Encoder, reserved: Set<String>) throws {
        guard !metrics.isEmpty else { return }
        var c = encoder.container(keyedBy: MetricCodingKey.self)
        var nested: [MetricValue] = []
        for m in metrics {
            if reserved.contains(m.name) { nested.append(m) } else { try c.encode(m.value, forKey: MetricCodingKey(stringValue: m.name)) }
        }
        if !nested.isEmpty {
            var n = c.nestedContainer(keyedBy: MetricCodingKey.self, forKey: MetricCodingKey(stringValue: objectKey))
            for m in nested { try n.encode(m.value, forKey: MetricCodingKey(stringValue: m.name)) }
        }
    }
}

extension StepRecord {
    static let reservedKeys = MetricCoding.reserved(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(step: try c.decode(Int.self, forKey: .step), epoch: try c.decode(Int.self, forKey: .epoch),
                  lrs: try c.decode([Double].self, forKey: .lrs), loss: try c.decode(Double.self, forKey: .loss),
                  gradNorm: try c.decode(Double.self, forKey: .gradNorm),
                  samplesPerSec: try c.decode(Double.self, forKey: .samplesPerSec),
                  wallTime: try c.decode(Double.self, forKey: .wallTime),
                  metrics: try MetricCoding.decode(from: decoder, reserved: Self.reservedKeys))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step); try c.encode(epoch, forKey: .epoch); try c.encode(lrs, forKey: .lrs)
        try c.encode(loss, forKey: .loss); try c.encode(gradNorm, forKey: .gradNorm)
        try c.encode(samplesPerSec, forKey: .samplesPerSec); try c.encode(wallTime, forKey: .wallTime)
        try MetricCoding.encode(metrics, to: encoder, reserved: Self.reservedKeys)
    }
}

extension EvalRecord {
    static let reservedKeys = MetricCoding.reserved(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(step: try c.decode(Int.self, forKey: .step), epoch: try c.decode(Int.self, forKey: .epoch),
                  loss: try c.decode(Double.self, forKey: .loss), accuracy: try c.decode(Double.self, forKey: .accuracy),
                  wallTime: try c.decode(Double.self, forKey: .wallTime),
                  metrics: try MetricCoding.decode(from: decoder, reserved: Self.reservedKeys))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step); try c.encode(epoch, forKey: .epoch); try c.encode(loss, forKey: .loss)
        try c.encode(accuracy, forKey: .accuracy); try c.encode(wallTime, forKey: .wallTime)
        try MetricCoding.encode(metrics, to: encoder, reserved: Self.reservedKeys)
    }
}

extension MetricsRecord {
    static let reservedKeys = MetricCoding.reserved(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(step: try c.decode(Int.self, forKey: .step), wallTime: try c.decode(Double.self, forKey: .wallTime),
                  metrics: try MetricCoding.decode(from: decoder, reserved: Self.reservedKeys))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step); try c.encode(wallTime, forKey: .wallTime)
        try MetricCoding.encode(metrics, to: encoder, reserved: Self.reservedKeys)
    }
}
