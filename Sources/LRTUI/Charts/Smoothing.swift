#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TensorBoard's debiased exponential moving average:
/// `ema = ema·w + (1−w)·x`, reported as `ema / (1 − wⁿ)` after n values, so early values are not pulled to 0.
public struct DebiasedEMA: Sendable, Equatable {
    public let weight: Double
    public private(set) var ema: Double = 0
    public private(set) var count: Int = 0

    public init(weight: Double) {
        self.weight = min(max(weight, 0), 0.999_999)
    }

    /// Adds a value and returns the smoothed value. Non-finite values are passed through without updating.
    @discardableResult
    public mutating func add(_ x: Double) -> Double {
        guard x.isFinite else { return x }
        if weight == 0 { count += 1; ema = x; return x }
        ema = ema * weight + (1 - weight) * x
        count += 1
        return value
    }

    /// The current smoothed value (nan before the first value).
    public var value: Double {
        guard count > 0 else { return .nan }
        if weight == 0 { return ema }
        return ema / (1 - pow(weight, Double(count)))
    }

    public mutating func reset() { ema = 0; count = 0 }
}
