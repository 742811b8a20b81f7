import ArgumentParser
import Foundation
import LRLog
import LRTUI

struct Themes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the UI's colour themes (btop's theme format; 't' cycles them in the UI).",
        discussion: """
        The built-in themes are part of the binary. Your own are NAME.theme files in $LRTOP_THEMES \
        (colon-separated folders) or $XDG_CONFIG_HOME/lrtop/themes (~/.config/lrtop/themes); one named like a \
        built-in replaces it. --theme NAME picks one, --theme FILE.theme reads a file.
        """)

    // Kept so that `lrtop themes --paths` from before still runs: where each theme comes from is always shown now.
    @Flag(help: .hidden) var paths = false

    func run() throws {
        let store = Themes.store
        let names = store.availableThemes()
        let width = names.map(\.count).max() ?? 0
        for name in names {
            var line = name.padding(toLength: width + 2, withPad: " ", startingAt: 0)
            if let file = store.path(for: name) {
                line += file + (Theme.builtinNames.contains(name) ? " (replaces the built-in)" : "")
            } else {
                line += "built in"
            }
            if name == "default" { line += " (the default)" }
            let result = store.load(name)
            if !result.diagnostics.isEmpty { line += "  [\(result.diagnostics.count) problem(s): \(result.diagnostics[0])]" }
            printOut(line)
        }
        printOut(Self.userThemesLine(store))
    }

    /// Where user themes were looked for, and what was there.
    static func userThemesLine(_ store: ThemeStore) -> String {
        guard !store.searchPaths.isEmpty else { return "user themes: none looked for (HOME is not set; set LRTOP_THEMES)" }
        let folders = store.searchPaths.map { dir -> String in
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                return dir + " (no such folder)"
            }
            let count = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".theme") }.count
            return dir + " (\(count == 0 ? "no" : "\(count)") .theme file\(count == 1 ? "" : "s"))"
        }
        return "user themes: NAME.theme files, looked for in " + folders.joined(separator: ", ")
    }

    static var store: ThemeStore { ThemeStore(searchPaths: ThemeStore.defaultSearchPaths()) }

    /// The one theme loader of every command: the theme to start with and a notice of what was ignored in it,
    /// each problem printed as a warning. An unknown name or an unreadable file is an error.
    static func resolve(_ name: String?) throws -> (Theme, String?) {
        let result: ThemeLoadResult
        do { result = try store.resolve(name) } catch { try fail("\(error)") }
        for d in result.diagnostics { printErr("lrtop: warning: \(d)") }
        return (result.theme, result.diagnostics.isEmpty ? nil : "theme: \(result.diagnostics.count) problem(s) ignored; \(result.diagnostics[0])")
    }
}
