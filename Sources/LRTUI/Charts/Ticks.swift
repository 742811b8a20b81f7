#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How values map to rows.
public enum AxisScale: String, Sendable, CaseIterable {
    case linear, log

    public var toggled: AxisScale { self == .linear ? .log : .linear }

    /// The value in axis space (log10 for `.log`); nil when it cannot be shown (≤ 0 on a log axis, non-finite).
    @inline(__always) public func transform(_ v: Double) -> Double? {
        guard v.isFinite else { return nil }
        switch self {
        case .linear: return v
        case .log: return v > 0 ? log10(v) : nil
        }
    }
}

/// Nice tick values and their labels.
public enum Ticks {
    /// Ticks at multiples of a 1/2/2.5/5 × 10^k step, inside [lo, hi], at most `maxCount` of them.
    public static func linear(_ lo: Double, _ hi: Double, maxCount: Int) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo, maxCount >= 1 else { return lo.isFinite ? [lo] : [] }
        let step = niceStep((hi - lo) / Double(max(1, maxCount - 1)), maxCount: maxCount, span: hi - lo)
        var out: [Double] = []
        var v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-9 && out.count < maxCount + 2 {
            out.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return out
    }

    /// The smallest 1/2/2.5/5 × 10^k that is at least `raw` and leaves at most maxCount ticks.
    static func niceStep(_ raw: Double, maxCount: Int, span: Double) -> Double {
        guard raw > 0 else { return 1 }
        let mag = pow(10, (log10(raw)).rounded(.down))
        for m in [1.0, 2, 2.5, 5, 10, 20] {
            let step = m * mag
            if step >= raw * 0.999 && span / step <= Double(maxCount) { return step }
        }
        return 20 * mag
    }

    /// The step between integer ticks (1/2/5 × 10^k, at least 1).
    public static func integerStep(span: Int, maxCount: Int) -> Int {
        guard span > 0, maxCount > 0 else { return 1 }
        let raw = Double(span) / Double(maxCount)
        var mag = 1
        while Double(mag) * 10 <= raw { mag *= 10 }
        for m in [1, 2, 5, 10] where Double(m * mag) >= raw { return m * mag }
        return 10 * mag
    }

    /// Ticks for a log axis over [lo, hi] given in log10 space: decades, then 3× (1e-3, 3e-4 ...),
    /// then 2× and 5× when the range is narrow; at most `maxCount`.
    public static func log(_ lo: Double, _ hi: Double, maxCount: Int) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi >= lo, maxCount >= 1 else { return [] }
        let eLo = Int(lo.rounded(.down)) - 1, eHi = Int(hi.rounded(.up)) + 1
        func within(_ mults: [Double]) -> [Double] {
            var out: [Double] = []
            for e in eLo...eHi {
                for m in mults {
                    let v = m * pow(10, Double(e))
                    let l = log10(v)
                    if l >= lo - 1e-9 && l <= hi + 1e-9 { out.append(v) }
                }
            }
            return out.sorted()
        }
        var ticks = within([1])
        if ticks.count > maxCount {
            // Too many decades: keep every n-th.
            let n = Int((Double(ticks.count) / Double(maxCount)).rounded(.up))
            ticks = ticks.enumerated().filter { $0.offset % n == 0 }.map(\.element)
            return ticks
        }
        for mults in [[1.0, 3], [1.0, 2, 5]] {
            if ticks.count >= 3 { break }
            let denser = within(mults)
            if denser.count > maxCount { break }
            if denser.count > ticks.count { ticks = denser }
        }
        return ticks
    }

    /// A value for the top row's label when no tick falls on it: the axis's top, to two significant digits
    /// (rounded down, so it stays on the chart), or nil when that lands below the top row.
    static func topLabelValue(_ range: (lo: Double, hi: Double), scale: AxisScale, rows: Int) -> Double? {
        let hi = scale == .log ? pow(10, range.hi) : range.hi
        guard hi.isFinite, hi != 0 else { return nil }
        let unit = pow(10, (log10(abs(hi))).rounded(.down) - 1)
        let v = (hi / unit).rounded(.down) * unit
        guard let row = LineChart.row(of: v, range: range, scale: scale, rows: rows), row == 0 else { return nil }
        return v
    }

    /// A short label: the shorter of plain and scientific forms ("0.25", "1e-3", "3e-4", "1.5k" for big integers).
    public static func label(_ v: Double) -> String {
        guard v.isFinite else { return Format.nonFinite(v) }
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 10_000 { return Format.compact(v) }
        // Plain: up to 6 significant digits, trailing zeros dropped.
        let mag = Int(log10(a).rounded(.down))
        let plain = Format.trimZeros(Format.fixed(v, max(0, min(12, 5 - mag))))
        // Scientific: mantissa with up to 2 decimals.
        let e = Int(log10(a).rounded(.down))
        var m = v / pow(10, Double(e))
        var ee = e
        if abs(m) >= 9.995 { m /= 10; ee += 1 }
        let sci = Format.trimZeros(Format.fixed(m, 2)) + "e" + String(ee)
        return sci.count < plain.count ? sci : plain
    }

    /// A step label for the x axis: 950, 1.5k, 12k, 1.2M.
    public static func stepLabel(_ step: Int) -> String {
        step < 1000 ? String(step) : Format.compact(Double(step))
    }
}
