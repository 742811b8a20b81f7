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
        case let .event(r): try r.encode(to: encoder)
        case let .end(r): try r.encode(to: encoder)
        }
    }
}
