/// Every error LROptim throws: a sentence a user can act on, naming the bad part and the valid choices.
///
/// Hyperparameter validation reuses PyTorch's own messages (`Invalid learning rate: -1.0`,
/// `Invalid beta parameter at index 0: 1.5`) so users can search for them.
public struct OptimError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Formats a Double the way Python's `repr` does (`-1.0`, `0.001`, `1e-08`), so that
/// validation errors read exactly like PyTorch's.
func pyRepr(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    if x == x.rounded(), abs(x) < 1e16 {
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        return "\(Int64(x)).0"
    }
    return "\(x)"
}

/// Formats a number for a canonical spec string: integers without a fraction, others in shortest form.
func specNumber(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return "\(Int64(x))" }
    return "\(x)"
}
