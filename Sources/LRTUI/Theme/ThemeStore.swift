import Foundation

/// The one place themes come from: those built into the binary (`Theme.builtinNames`: `basic` and every
/// `themes/*.theme`, compiled in) and the user's `NAME.theme` files in `searchPaths` (first match wins; a user's file
/// replaces a built-in of the same name). Nothing is read from beside the executable, so a copied or pip-installed
/// binary has every built-in theme.
public struct ThemeStore: Sendable {
    public var searchPaths: [String]

    public init(searchPaths: [String]) {
        self.searchPaths = searchPaths
    }

    /// Where user themes are looked for: `$LRTOP_THEMES` (colon-separated), then `$XDG_CONFIG_HOME/lrtop/themes`
    /// (`~/.config/lrtop/themes` when XDG_CONFIG_HOME is unset), beside the `view.conf` the UI remembers.
    public static func defaultSearchPaths(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var paths: [String] = []
        if let env = environment["LRTOP_THEMES"] {
            paths += env.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty {
            paths.append(config + "/lrtop/themes")
        } else if let home = environment["HOME"], !home.isEmpty {
            paths.append(home + "/.config/lrtop/themes")
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// Names of the themes available: the built-ins and the files in the search path, sorted, with `default` first.
    public func availableThemes() -> [String] {
        var names = Set(Theme.builtinNames)
        for dir in searchPaths {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for e in entries where e.hasSuffix(".theme") && e.count > 6 { names.insert(String(e.dropLast(6))) }
        }
        return names.sorted { a, b in
            if a == "default" { return b != "default" }
            if b == "default" { return false }
            return a < b
        }
    }

    /// The user's file for this theme, if there is one in the search path.
    public func path(for name: String) -> String? {
        for dir in searchPaths {
            let p = dir + "/" + name + ".theme"
            if FileManager.default.isReadableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Loads a theme by name (or by path when `name` contains `/` or ends in `.theme`): the user's file, else the
    /// built-in; an unknown name gives the built-in default with a diagnostic saying where it looked.
    public func load(_ name: String) -> ThemeLoadResult {
        if name.contains("/") || name.hasSuffix(".theme") {
            let file = ((name as NSString).lastPathComponent as NSString).deletingPathExtension
            return Theme.load(path: name, base: Theme.base(forName: file))
        }
        if let p = path(for: name) { return Theme.load(path: p, base: Theme.base(forName: name)) }
        if let builtin = Theme.builtin(named: name) { return builtin }
        return ThemeLoadResult(theme: .builtinDefault,
                               diagnostics: ["theme '\(name)' not found (\(lookedIn)), using the built-in default"])
    }

    /// The theme a command starts with: the one named (a theme's name or a `.theme` file's path), or `default`. What
    /// a file gets wrong is in the diagnostics (the theme still loads); a name that is neither built in nor a user's
    /// file, or a file that cannot be read, is an error that names what there is.
    public func resolve(_ name: String?) throws -> ThemeLoadResult {
        guard let name else { return load("default") }
        if name.contains("/") || name.hasSuffix(".theme") {
            guard FileManager.default.isReadableFile(atPath: name) else {
                throw ThemeError("cannot read the theme file \(name)")
            }
        } else if !availableThemes().contains(name) {
            throw ThemeError("unknown theme '\(name)': available themes are "
                             + "\(availableThemes().joined(separator: ", ")) (\(lookedIn); 'lrtop themes' lists them)")
        }
        return load(name)
    }

    /// Where user themes were looked for, for messages.
    public var lookedIn: String {
        searchPaths.isEmpty ? "no user theme folder: HOME is not set" : "user themes looked for in " + searchPaths.joined(separator: ", ")
    }

    /// The theme after `name` in `availableThemes()`, wrapping around.
    public func next(after name: String) -> String {
        let all = availableThemes()
        guard let i = all.firstIndex(of: name) else { return all.first ?? "default" }
        return all[(i + 1) % all.count]
    }
}

/// A theme that cannot be used: one line naming it and what to do.
public struct ThemeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
