// How many colours the terminal shows, and how a theme's RGB degrades to that.

/// The colour capability of a terminal, from richest to none.
public enum ColorDepth: Int, Comparable, Sendable, CaseIterable, CustomStringConvertible {
    /// No colours (`NO_COLOR`, `TERM=dumb`, or a terminal without colours): bold/dim/reverse/underline only.
    case none = 0
    /// The 8 ANSI colours.
    case ansi8 = 8
    /// The xterm 256-colour palette.
    case xterm256 = 256
    /// 24-bit RGB.
    case truecolor = 16_777_216

    public static func < (a: ColorDepth, b: ColorDepth) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .none: return "none"
        case .ansi8: return "8"
        case .xterm256: return "256"
        case .truecolor: return "truecolor"
        }
    }

    /// Detects the depth from the environment and, when known, the terminal's colour count (ncurses `COLORS`):
    /// `NO_COLOR` (non-empty) or `TERM=dumb` → none; `COLORTERM` truecolor/24bit → truecolor;
    /// `TERM` containing 256color or colours ≥ 256 → 256; colours ≥ 8 (or a TERM whose colours are unknown) → 8;
    /// else none.
    public static func detect(environment: [String: String], terminalColors: Int? = nil) -> ColorDepth {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .none }
        let term = (environment["TERM"] ?? "").lowercased()
        if term == "dumb" { return .none }
        if let colors = terminalColors, colors < 8 { return .none }
        let colorterm = (environment["COLORTERM"] ?? "").lowercased()
        if colorterm == "truecolor" || colorterm == "24bit" { return .truecolor }
        if term.contains("256color") || (terminalColors ?? 0) >= 256 { return .xterm256 }
        if (terminalColors ?? 0) >= 8 { return .ansi8 }
        if terminalColors == nil && !term.isEmpty { return .ansi8 }
        return .none
    }

    /// The colour as the terminal at this depth can show it; `.default` at depth none.
    public func degrade(_ color: Color) -> TerminalColor {
        switch (self, color) {
        case (_, .default), (.none, _): return .default
        case (.truecolor, .rgb(let c)): return .rgb(c)
        case (.truecolor, .indexed(let i)), (.xterm256, .indexed(let i)): return .index(Int(i))
        // An ANSI colour written as its xterm value (the mono theme's) stays that ANSI colour, never a 256-colour code.
        case (.xterm256, .rgb(let c)): return .index(XtermPalette.ansiIndex(of: c) ?? XtermPalette.nearest256(c))
        case (.ansi8, .indexed(let i)):
            return .index(i < 8 ? Int(i) : i < 16 ? Int(i) - 8 : XtermPalette.nearestANSI8(XtermPalette.rgb(of: Int(i))))
        case (.ansi8, .rgb(let c)):
            if let i = XtermPalette.ansiIndex(of: c) { return .index(i) }
            return .index(XtermPalette.nearestANSI8(c))
        }
    }
}

/// A colour the terminal can take as is.
public enum TerminalColor: Hashable, Sendable {
    case `default`
    case index(Int)
    case rgb(RGB)
}

/// The xterm palette and nearest-colour searches over it.
public enum XtermPalette {
    static let ansi16: [RGB] = [
        RGB(0, 0, 0), RGB(205, 0, 0), RGB(0, 205, 0), RGB(205, 205, 0),
        RGB(0, 0, 238), RGB(205, 0, 205), RGB(0, 205, 205), RGB(229, 229, 229),
        RGB(127, 127, 127), RGB(255, 0, 0), RGB(0, 255, 0), RGB(255, 255, 0),
        RGB(92, 92, 255), RGB(255, 0, 255), RGB(0, 255, 255), RGB(255, 255, 255),
    ]
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    /// The ANSI colour 0...7 whose xterm value `c` is exactly (black is also the cube's 16: the same colour).
    public static func ansiIndex(of c: RGB) -> Int? {
        (0..<8).first { ansi16[$0] == c }
    }

    /// The RGB of palette index 0...255 (xterm defaults for 0...15).
    public static func rgb(of index: Int) -> RGB {
        switch index {
        case ..<0: return ansi16[0]
        case 0..<16: return ansi16[index]
        case 16..<232:
            let i = index - 16
            return RGB(UInt8(cubeLevels[i / 36]), UInt8(cubeLevels[(i / 6) % 6]), UInt8(cubeLevels[i % 6]))
        case 232..<256:
            let v = UInt8(8 + 10 * (index - 232))
            return RGB(v, v, v)
        default: return ansi16[15]
        }
    }

    /// The nearest index of the 6×6×6 cube or the 24-step grey ramp (16...255), as tmux chooses it.
    public static func nearest256(_ c: RGB) -> Int {
        func to6(_ v: Int) -> Int { v < 48 ? 0 : v < 114 ? 1 : (v - 35) / 40 }
        func dist(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Int {
            let dr = a.0 - b.0, dg = a.1 - b.1, db = a.2 - b.2
            return dr * dr + dg * dg + db * db
        }
        let r = Int(c.r), g = Int(c.g), b = Int(c.b)
        let qr = to6(r), qg = to6(g), qb = to6(b)
        let cr = cubeLevels[qr], cg = cubeLevels[qg], cb = cubeLevels[qb]
        let cube = 16 + 36 * qr + 6 * qg + qb
        if cr == r && cg == g && cb == b { return cube }
        let avg = (r + g + b) / 3
        let greyIdx = avg > 238 ? 23 : max(0, (avg - 3) / 10)
        let grey = 8 + 10 * greyIdx
        if dist((grey, grey, grey), (r, g, b)) < dist((cr, cg, cb), (r, g, b)) { return 232 + greyIdx }
        return cube
    }

    /// The nearest of the 8 ANSI colours by hue: greys go to white from 30% brightness (text stays readable on a dark background), dark colours to black,
    /// saturated colours to the ANSI colour of their hue sector.
    public static func nearestANSI8(_ c: RGB) -> Int {
        let r = Double(c.r) / 255, g = Double(c.g) / 255, b = Double(c.b) / 255
        let maxC = max(r, g, b), minC = min(r, g, b)
        let v = maxC
        let s = maxC == 0 ? 0 : (maxC - minC) / maxC
        if v < 0.25 { return 0 }
        if s < 0.25 {
            return (r + g + b) / 3 >= 0.3 ? 7 : 0
        }
        let d = maxC - minC
        var h: Double
        if maxC == r { h = 60 * ((g - b) / d).truncatingRemainder(dividingBy: 6) }
        else if maxC == g { h = 60 * ((b - r) / d + 2) }
        else { h = 60 * ((r - g) / d + 4) }
        if h < 0 { h += 360 }
        switch h {
        case 0..<30, 330...360: return 1   // red
        case 30..<90: return 3             // yellow
        case 90..<150: return 2            // green
        case 150..<210: return 6           // cyan
        case 210..<270: return 4           // blue
        default: return 5                  // magenta
        }
    }
}
