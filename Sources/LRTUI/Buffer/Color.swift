// Colours as the UI thinks of them. Themes give RGB; the backend turns a `Color` into what the terminal can show
// (see `ColorDepth`).

/// A 24-bit colour.
public struct RGB: Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r; self.g = g; self.b = b
    }

    /// Parses `#RRGGBB` or `RRGGBB` (case-insensitive). Returns nil for anything else.
    public init?(hex: String) {
        var text = Substring(hex)
        if text.hasPrefix("#") { text = text.dropFirst() }
        guard text.count == 6, let value = UInt32(text, radix: 16), text.allSatisfy(\.isHexDigit) else { return nil }
        self.init(UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff))
    }

    /// `#rrggbb`.
    public var hex: String {
        let digits = Array("0123456789abcdef")
        var out = "#"
        for c in [r, g, b] {
            out.append(digits[Int(c >> 4)]); out.append(digits[Int(c & 0xf)])
        }
        return out
    }

    public var description: String { hex }

    /// Linear interpolation towards `other`: t = 0 gives self, t = 1 gives other.
    public func mixed(with other: RGB, _ t: Double) -> RGB {
        let t = min(1, max(0, t))
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 {
            UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded())
        }
        return RGB(mix(r, other.r), mix(g, other.g), mix(b, other.b))
    }

    /// Relative luminance in [0, 1] (sRGB weights, no gamma).
    public var luminance: Double {
        (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255
    }
}

/// A colour in a cell: the terminal's own default, an RGB from a theme, or a palette index (0...255).
public enum Color: Hashable, Sendable {
    case `default`
    case rgb(RGB)
    case indexed(UInt8)

    /// The 8 ANSI colours by name, as palette indices.
    public static let black = Color.indexed(0), red = Color.indexed(1), green = Color.indexed(2),
        yellow = Color.indexed(3), blue = Color.indexed(4), magenta = Color.indexed(5), cyan = Color.indexed(6),
        white = Color.indexed(7)

    /// The colour as RGB (palette indices use the xterm palette); nil for `.default`.
    public var rgbValue: RGB? {
        switch self {
        case .default: return nil
        case .rgb(let c): return c
        case .indexed(let i): return XtermPalette.rgb(of: Int(i))
        }
    }
}
