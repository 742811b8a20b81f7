import Foundation

/// A theme with what was wrong in its file (one line per problem, ready to show a person).
public struct ThemeLoadResult: Sendable {
    public var theme: Theme
    public var diagnostics: [String]
}

extension Theme {
    /// Parses a theme in btop's format:
    ///
    ///     # comment
    ///     theme[main_bg]="#0d1117"
    ///     theme[lr_line]="#58a6ff"
    ///
    /// Values may be `#RRGGBB`, `#GG` (a grey), `R G B` in decimal, or empty (the terminal's default colour).
    /// Keys the file leaves out keep `base`'s colours. A gradient given only by `_start` and `_end` gets a `_mid`
    /// halfway between. Unknown keys and bad colours are skipped and reported.
    public static func parse(_ text: String, name: String, base: Theme = .builtinDefault) -> ThemeLoadResult {
        var colors: [String: Color] = [:]
        var diagnostics: [String] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let parsed = parseAssignment(line) else {
                diagnostics.append("theme '\(name)': line \(lineNumber): cannot read '\(line)', expected theme[key]=\"#RRGGBB\"")
                continue
            }
            guard knownKeys.contains(parsed.key) else {
                diagnostics.append("theme '\(name)': line \(lineNumber): unknown key '\(parsed.key)', ignored")
                continue
            }
            guard let color = parseColor(parsed.value) else {
                diagnostics.append("theme '\(name)': line \(lineNumber): bad colour '\(parsed.value)' for '\(parsed.key)', using default")
                continue
            }
            colors[parsed.key] = color
        }
        for g in gradientBases {
            let s = g + "_start", m = g + "_mid", e = g + "_end"
            if colors[m] == nil, case .rgb(let a)? = colors[s], case .rgb(let b)? = colors[e] {
                colors[m] = .rgb(a.mixed(with: b, 0.5))
            }
        }
        return ThemeLoadResult(theme: Theme(name: name, colors: colors, base: base), diagnostics: diagnostics)
    }

    /// Reads and parses a theme file; the name is the file name without `.theme`.
    public static func load(path: String, base: Theme = .builtinDefault) -> ThemeLoadResult {
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            return ThemeLoadResult(theme: Theme(name: name, base: base),
                                   diagnostics: ["theme '\(name)': cannot read \(path), using the built-in default"])
        }
        return parse(text, name: name, base: base)
    }

    /// `theme[key]="value"` (quotes optional, spaces around `=` allowed) → (key, value).
    static func parseAssignment(_ line: String) -> (key: String, value: String)? {
        guard line.hasPrefix("theme["), let close = line.firstIndex(of: "]") else { return nil }
        let key = String(line[line.index(line.startIndex, offsetBy: 6)..<close]).trimmingCharacters(in: .whitespaces)
        var rest = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix("="), !key.isEmpty else { return nil }
        rest = String(rest.dropFirst()).trimmingCharacters(in: .whitespaces)
        if let hash = rest.range(of: " #"), !rest.hasPrefix("\"") { rest = String(rest[..<hash.lowerBound]) }
        if rest.hasPrefix("\"") {
            let body = rest.dropFirst()
            guard let end = body.firstIndex(of: "\"") else { return nil }
            rest = String(body[..<end])
        } else if rest.hasPrefix("'") {
            let body = rest.dropFirst()
            guard let end = body.firstIndex(of: "'") else { return nil }
            rest = String(body[..<end])
        }
        return (key, rest.trimmingCharacters(in: .whitespaces))
    }

    /// `#RRGGBB`, `#GG` (grey), `R G B` (decimal 0...255), or empty (terminal default).
    public static func parseColor(_ value: String) -> Color? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if v.isEmpty { return .default }
        if v.hasPrefix("#") {
            let digits = v.dropFirst()
            guard digits.allSatisfy(\.isHexDigit) else { return nil }
            if digits.count == 6 { return RGB(hex: String(digits)).map(Color.rgb) }
            if digits.count == 2, let g = UInt8(digits, radix: 16) { return .rgb(RGB(g, g, g)) }
            return nil
        }
        let parts = v.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count == 3 {
            let nums = parts.compactMap { UInt8($0) }
            if nums.count == 3 { return .rgb(RGB(nums[0], nums[1], nums[2])) }
        }
        return nil
    }

    /// The theme in btop's format (what `themes/*.theme` hold).
    public func serialized(header: String? = nil) -> String {
        var out = ""
        if let header { out += header.split(separator: "\n", omittingEmptySubsequences: false).map { "# " + $0 }.joined(separator: "\n") + "\n\n" }
        for (key, help) in Theme.keys {
            let value: String
            switch self[key] {
            case .default: value = ""
            case .rgb(let c): value = c.hex
            case .indexed(let i): value = XtermPalette.rgb(of: Int(i)).hex
            }
            out += "# \(help)\ntheme[\(key)]=\"\(value)\"\n\n"
        }
        return out
    }
}
