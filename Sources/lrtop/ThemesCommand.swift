import ArgumentParser
import Foundation
import LRTUI

struct Themes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the UI's colour themes (btop's theme format; 't' cycles them in the UI).",
        discussion: "Themes are NAME.theme files found in: $LRTOP_THEMES, ~/.config/lrtop/themes, the themes/ folder of this checkout, /usr/local/share/lrtop/themes.")

    @Flag(help: "Also print where each theme file is.") var paths = false

    func run() throws {
        let store = Themes.store
        for name in store.availableThemes() {
            var line = name
            if name == "default" { line += "  (default)" }
            if paths { line += "  " + (store.path(for: name) ?? "(built in)") }
            let result = store.load(name)
            if !result.diagnostics.isEmpty { line += "  [\(result.diagnostics.count) problem(s): \(result.diagnostics[0])]" }
            printOut(line)
        }
    }

    static var store: ThemeStore { ThemeStore(searchPaths: ThemeStore.defaultSearchPaths()) }

    /// The theme to start with, and a notice of what was ignored in it. An unknown name is an error.
    static func resolve(_ name: String?) -> (Theme, String?) {
        guard let name else {
            let result = store.load("default")
            return (result.theme, result.diagnostics.first)
        }
        let isPath = name.contains("/") || name.hasSuffix(".theme")
        if !isPath && !store.availableThemes().contains(name) {
            fail("unknown theme '\(name)': available themes are \(store.availableThemes().joined(separator: ", ")) ('lrtop themes' lists them)")
        }
        if isPath && !FileManager.default.isReadableFile(atPath: name) { fail("cannot read the theme file \(name)") }
        let result = store.load(name)
        for d in result.diagnostics { printErr("lrtop: warning: \(d)") }
        return (result.theme, result.diagnostics.isEmpty ? nil : "theme: \(result.diagnostics.count) problem(s) ignored; \(result.diagnostics[0])")
    }
}
