#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Number and duration formatting for a terminal: short, fixed conventions, no locale.
public enum Format {
    /// `value` with `digits` decimals (rounded), e.g. fixed(0.1234, 2) = "0.12".
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return nonFinite(value) }
        let scale = powi(10, digits)
        var r = (abs(value) * scale).rounded()
        // Avoid printing "-0.00".
        let negative = value < 0 && r != 0
        let intPart = (r / scale).rounded(.down)
        r -= intPart * scale
        var s = String(format0(intPart))
        if digits > 0 {
            var frac = String(Int(r))
            while frac.count < digits { frac = "0" + frac }
            s += "." + frac
        }
        return negative ? "-" + s : s
    }

    static func format0(_ v: Double) -> String {
        v < 9e18 ? String(Int64(v)) : String(v)
    }

    static func powi(_ b: Double, _ e: Int) -> Double {
        var r = 1.0
        for _ in 0..<abs(e) { r *= b }
        return e < 0 ? 1 / r : r
    }

    static func nonFinite(_ v: Double) -> String { v.isNaN ? "nan" : v > 0 ? "inf" : "-inf" }

    /// Scientific with `digits` decimals and a short exponent: sci(3e-4) = "3.00e-4".
    public static func sci(_ value: Double, _ digits: Int = 2) -> String {
        guard value.isFinite else { return nonFinite(value) }
        if value == 0 { return fixed(0, digits) + "e0" }
        var e = Int(log10(abs(value)).rounded(.down))
        var m = value / powi(10, e)
        // Rounding can carry into the next power (9.999 → 10.00).
        if abs((m * powi(10, digits)).rounded()) >= 10 * powi(10, digits) { e += 1; m = value / powi(10, e) }
        return fixed(m, digits) + "e" + String(e)
    }

    /// A learning rate: "3.00e-4" (scientific below 0.01, else 4 significant digits).
    public static func lr(_ value: Double) -> String {
        guard value.isFinite else { return nonFinite(value) }
        if value == 0 { return "0" }
        return abs(value) < 0.01 || abs(value) >= 1000 ? sci(value, 2) : significant(value, 3)
    }

    /// `digits` significant digits, trailing zeros kept: significant(0.54321, 3) = "0.543".
    public static func significant(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return nonFinite(value) }
        if value == 0 { return "0" }
        let mag = Int(log10(abs(value)).rounded(.down))
        let decimals = max(0, digits - 1 - mag)
        if decimals > 8 { return sci(value, max(0, digits - 1)) }
        return fixed(value, decimals)
    }

    /// A loss or metric: 4 significant digits, scientific when tiny or huge.
    public static func metric(_ value: Double) -> String {
        guard value.isFinite else { return nonFinite(value) }
        if value != 0 && (abs(value) < 1e-3 || abs(value) >= 1e6) { return sci(value, 2) }
        return significant(value, 4)
    }

    /// Short human count: 950, 1.2k, 12.3k, 4.5M.
    public static func compact(_ value: Double) -> String {
        guard value.isFinite else { return nonFinite(value) }
        let a = abs(value)
        let sign = value < 0 ? "-" : ""
        switch a {
        case ..<1: return sign + trimZeros(fixed(a, 2))
        case ..<10: return sign + trimZeros(fixed(a, 1))
        case ..<1000: return sign + fixed(a, 0)
        case ..<1e6: return sign + trimZeros(fixed(a / 1e3, a < 1e4 ? 1 : 0)) + "k"
        case ..<1e9: return sign + trimZeros(fixed(a / 1e6, a < 1e7 ? 1 : 0)) + "M"
        default: return sign + trimZeros(fixed(a / 1e9, 1)) + "G"
        }
    }

    /// An integer with thousands separators: 1234567 → "1,234,567".
    public static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// A duration: "45s", "12m03s", "1h02m", "3d04h".
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + two(s % 60) + "s" }
        if s < 86400 { return "\(s / 3600)h" + two((s % 3600) / 60) + "m" }
        return "\(s / 86400)d" + two((s % 86400) / 3600) + "h"
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Drops trailing zeros after a decimal point: "1.50" → "1.5", "2.0" → "2".
    public static func trimZeros(_ s: String) -> String {
        guard s.contains("."), !s.contains("e") else { return s }
        var t = Substring(s)
        while t.last == "0" { t = t.dropLast() }
        if t.last == "." { t = t.dropLast() }
        return String(t)
    }

    /// A percentage of a ratio in [0, 1]: "81.2%".
    public static func percent(_ ratio: Double, digits: Int = 1) -> String {
        guard ratio.isFinite else { return "--" }
        return fixed(ratio * 100, digits) + "%"
    }

    /// `text` broken at spaces into lines of at most `width` cells (a word longer than a line is cut).
    public static func wrap(_ text: String, width: Int) -> [String] {
        guard width > 0 else { return [] }
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let w = String(word)
            if line.isEmpty {
                line = w
            } else if line.cellWidth + 1 + w.cellWidth <= width {
                line += " " + w
            } else {
                lines.append(line)
                line = w
            }
            while line.cellWidth > width {
                lines.append(line.truncated(toWidth: width, ellipsis: nil))
                line = String(line.dropFirst(lines.last!.count))
            }
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        return lines
    }

    /// A summary with tuples written as the spec language takes them back: `betas=(0.9,0.999)` → `betas=0.9/0.999`.
    public static func typeable(_ summary: String) -> String {
        var out = ""
        var inTuple = false
        var previous: Character = " "
        for ch in summary {
            if ch == "(" && previous == "=" { inTuple = true }
            else if ch == ")" && inTuple { inTuple = false }
            else if ch == "," && inTuple { out.append("/") }
            else { out.append(ch) }
            previous = ch
        }
        return out
    }
}
