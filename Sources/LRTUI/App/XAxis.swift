/// What the charts' x axis counts. The tracks are indexed by an integer x: the step, or for runs aligned by
/// wall time (`lrtop replay --align walltime`) the number of `unit` seconds since the run started.
public enum XAxis: Equatable, Sendable {
    case steps
    /// x is wall time in multiples of `unit` seconds.
    case wallTime(unit: Double)

    /// A tick label: `950`, `1.5k` for steps; `0.25s`, `12s`, `3m05s` for wall time.
    public func label(_ x: Int) -> String {
        switch self {
        case .steps: return Ticks.stepLabel(x)
        case .wallTime(let unit): return Self.seconds(Double(x) * unit)
        }
    }

    /// The position as the header and status panel write it: `1,234` or `12.5s`.
    public func text(_ x: Int) -> String {
        switch self {
        case .steps: return Format.grouped(x)
        case .wallTime(let unit): return Self.seconds(Double(x) * unit)
        }
    }

    /// Short seconds: up to three significant digits below a minute, then `Format.duration`.
    static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        if s == 0 { return "0s" }
        if abs(s) >= 60 { return Format.duration(s) }
        return Format.trimZeros(Format.significant(s, 3)) + "s"
    }
}
