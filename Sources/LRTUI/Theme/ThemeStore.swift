import Foundation

/// Finds themes in a list of directories (first match wins) and the built-ins (`default`, `basic`).
public struct ThemeStore: Sendable {
    public var searchPaths: [String]

    public init(searchPaths: [String]) {
        self.searchPaths = searchPaths
    }

    /// The usual search path: `$LRTOP_THEMES` (colon-separated), `~/.config/lrtop/themes`,
    /// `<executable dir>/../../themes` (a SwiftPM build tree: `.build/debug/lrtop`), `<executable dir>/../share/lrtop/themes`,
    /// `/usr/local/share/lrtop/themes`, `/usr/share/lrtop/themes`, and a `themes/` folder found by walking up from
    /// the executable (the repository).
    public static func defaultSearchPaths(environment: [String: String] = ProcessInfo.processInfo.environment,
                                          executablePath: String? = CommandLine.arguments.first) -> [String] {
        var paths: [String] = []
        if let env = environment["LRTOP_THEMES"] {
            paths += env.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let home = environment["HOME"], !home.isEmpty { paths.append(home + "/.config/lrtop/themes") }
        if let exe = executablePath, !exe.isEmpty {
            let resolved = URL(fileURLWithPath: exe).resolvingSymlinksInPath()
            let dir = resolved.deletingLastPathComponent()
            paths.append(dir.appendingPathComponent("../../themes").standardized.path)
            paths.append(dir.appendingPathComponent("../share/lrtop/themes").standardized.path)
            var up = dir
            for _ in 0..<6 {
                let candidate = up.appendingPathComponent("themes").path
                if !paths.contains(candidate) { paths.append(candidate) }
                up = up.deletingLastPathComponent()
            }
        }
        paths += ["/usr/local/share/lrtop/themes", "/usr/share/lrtop/themes"]
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// Names of the themes available: files `NAME.theme` in the search path and the built-ins, sorted,
    /// with `default` first.
    public func availableThemes() -> [String] {
        var names = Set(Theme.builtins.map(\.name))
        for dir in searchPaths {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for e in entries where e.hasSuffix(".theme") { names.insert(String(e.dropLast(6))) }
        }
        return names.sorted { a, b in
            if a == "default" { return b != "default" }
            if b == "default" { return false }
            return a < b
        }
    }

    /// Where the theme's file is, if there is one.
    public func path(for name: String) -> String? {
        for dir in searchPaths {
            let p = dir + "/" + name + ".theme"
            if FileManager.default.isReadableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Loads a theme by name (or by path when `name` contains `/` or ends in `.theme`). A file wins over a built-in of
    /// the same name; an unknown name gives the built-in default with a diagnostic.
    public func load(_ name: String) -> ThemeLoadResult {
        if name.contains("/") || name.hasSuffix(".theme") {
            return Theme.load(path: name)
        }
        if let p = path(for: name) {
            let base = name == "basic" || name == "mono" ? Theme.basic : Theme.builtinDefault
            return Theme.load(path: p, base: base)
        }
        if let builtin = Theme.builtins.first(where: { $0.name == name }) {
            return ThemeLoadResult(theme: builtin, diagnostics: [])
        }
        let where_ = searchPaths.isEmpty ? "no theme directories" : searchPaths.joined(separator: ", ")
        return ThemeLoadResult(theme: .builtinDefault,
                               diagnostics: ["theme '\(name)' not found (looked in \(where_)), using the built-in default"])
    }

    /// The theme after `name` in `availableThemes()`, wrapping around.
    public func next(after name: String) -> String {
        let all = availableThemes()
        guard let i = all.firstIndex(of: name) else { return all.first ?? "default" }
        return all[(i + 1) % all.count]
    }
}
