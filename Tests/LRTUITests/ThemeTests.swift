import Foundation
import Testing
import LRTUI

@Suite struct ThemeTests {
    @Test func parsesValidTheme() {
        let text = """
        # a comment
        theme[main_bg]="#101010"
        theme[lr_line]="#FF0000"   
        theme[title] = "#80"
        theme[hi_fg]="10 20 30"
        theme[main_fg]=""
        """
        let r = Theme.parse(text, name: "t")
        #expect(r.diagnostics.isEmpty)
        #expect(r.theme["main_bg"] == .rgb(RGB(16, 16, 16)))
        #expect(r.theme["lr_line"] == .rgb(RGB(255, 0, 0)))
        #expect(r.theme["title"] == .rgb(RGB(128, 128, 128)))
        #expect(r.theme["hi_fg"] == .rgb(RGB(10, 20, 30)))
        #expect(r.theme["main_fg"] == .default)
        // Keys left out keep the built-in default.
        #expect(r.theme["loss_line"] == Theme.builtinDefault["loss_line"])
        #expect(r.theme.name == "t")
    }

    @Test func reportsUnknownKeysAndBadColours() {
        let text = """
        theme[lr_line]="#00ff00"
        theme[cpu_box]="#ffffff"
        garbage line
        theme[warn_fg]="#12345G"
        """
        let r = Theme.parse(text, name: "x")
        #expect(r.diagnostics.count == 3)
        #expect(r.diagnostics.contains("theme 'x': line 2: unknown key 'cpu_box', ignored"))
        #expect(r.diagnostics.contains("theme 'x': line 4: bad colour '#12345G' for 'warn_fg', using default"))
        #expect(r.diagnostics.contains { $0.hasPrefix("theme 'x': line 3: cannot read") })
        #expect(r.theme["warn_fg"] == Theme.builtinDefault["warn_fg"])
        #expect(r.theme["lr_line"] == .rgb(RGB(0, 255, 0)))
    }

    @Test func gradientTripletsAndMissingMid() {
        let r = Theme.parse("""
        theme[throughput_start]="#000000"
        theme[throughput_end]="#ffffff"
        """, name: "g")
        let g = r.theme.gradient("throughput")
        #expect(g.start == .rgb(RGB(0, 0, 0)))
        #expect(g.mid == .rgb(RGB(128, 128, 128)))
        #expect(g.end == .rgb(RGB(255, 255, 255)))
        #expect(g.color(at: 0) == .rgb(RGB(0, 0, 0)))
        #expect(g.color(at: 0.25) == .rgb(RGB(64, 64, 64)))
        #expect(g.color(at: 1) == .rgb(RGB(255, 255, 255)))
        let full = Theme.parse("""
        theme[throughput_start]="#ff0000"
        theme[throughput_mid]="#00ff00"
        theme[throughput_end]="#0000ff"
        """, name: "g3").theme.gradient("throughput")
        #expect(full.color(at: 0.5) == .rgb(RGB(0, 255, 0)))
        #expect(full.color(at: 0.75) == .rgb(RGB(0, 128, 128)))
    }

    @Test func serializedThemeParsesBack() {
        let text = Theme.builtinDefault.serialized(header: "default")
        let r = Theme.parse(text, name: "default")
        #expect(r.diagnostics.isEmpty)
        #expect(r.theme == Theme.builtinDefault)
    }

    static var repoThemes: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("themes").path
    }

    /// The six built-in themes need no file: a store that looks nowhere has them all.
    @Test func builtInThemesParseCleanly() {
        let store = ThemeStore(searchPaths: [])
        let names = store.availableThemes()
        #expect(names == ["default", "basic", "colorblind", "high-contrast", "light", "mono"])
        #expect(Set(Theme.builtinNames) == Set(names))
        for n in ["default", "light", "high-contrast", "colorblind", "mono"] {
            let r = store.load(n)
            #expect(r.diagnostics.isEmpty, "\(n): \(r.diagnostics)")
            #expect(r.theme.name == n)
            #expect(store.path(for: n) == nil)
            // Every key is set in the file.
            let text = Theme.builtinFiles.first { $0.name == n }?.text
            for (key, _) in Theme.keys { #expect(text?.contains("theme[\(key)]=") == true, "\(n) lacks \(key)") }
        }
        #expect(store.load("default").theme == Theme.builtinDefault)
        #expect(store.load("basic").theme == Theme.basic)
        // mono builds on the 8-colour basic theme; the others on the default.
        #expect(store.load("mono").theme["main_bg"] == .default)
        // Okabe–Ito colours in the colour-blind theme.
        #expect(store.load("colorblind").theme["smooth_line"] == .rgb(RGB(0xe6, 0x9f, 0x00)))
    }

    /// The compiled-in themes are exactly the files in themes/ (scripts/generate-builtins writes them).
    @Test func compiledThemesAreTheFilesInThemesFolder() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.repoThemes).filter { $0.hasSuffix(".theme") }
        let compiled = Dictionary(uniqueKeysWithValues: Theme.builtinFiles.map { ($0.name, $0.text) })
        let stale = "BuiltinThemes.swift is out of date: run scripts/generate-builtins"
        #expect(Set(files.map { String($0.dropLast(6)) }) == Set(compiled.keys), "\(stale)")
        for file in files {
            let text = try String(contentsOfFile: Self.repoThemes + "/" + file, encoding: .utf8)
            #expect(compiled[String(file.dropLast(6))] == text, "\(file): \(stale)")
        }
    }

    @Test func storeDiscoversCyclesAndFallsBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtui-themes-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "theme[lr_line]=\"#010203\"\n".write(to: dir.appendingPathComponent("zeta.theme"), atomically: true, encoding: .utf8)
        try "theme[nope]=\"#010203\"\n".write(to: dir.appendingPathComponent("alpha.theme"), atomically: true, encoding: .utf8)
        let store = ThemeStore(searchPaths: ["/nonexistent", dir.path])
        #expect(store.availableThemes() == ["default", "alpha", "basic", "colorblind", "high-contrast", "light", "mono", "zeta"])
        #expect(store.next(after: "default") == "alpha")
        #expect(store.next(after: "zeta") == "default")
        #expect(store.load("zeta").theme["lr_line"] == .rgb(RGB(1, 2, 3)))
        #expect(store.load("alpha").diagnostics == ["theme 'alpha': line 1: unknown key 'nope', ignored"])
        let missing = store.load("nosuch")
        #expect(missing.theme == Theme.builtinDefault)
        #expect(missing.diagnostics.first?.hasPrefix("theme 'nosuch' not found") == true)
        #expect(store.load(dir.appendingPathComponent("zeta.theme").path).theme.name == "zeta")
    }

    /// User themes: $LRTOP_THEMES, then the config folder (XDG's when set); never beside the executable.
    @Test func defaultSearchPathsAreTheUsersOnly() {
        #expect(ThemeStore.defaultSearchPaths(environment: ["LRTOP_THEMES": "/a:/b", "HOME": "/home/u"])
                == ["/a", "/b", "/home/u/.config/lrtop/themes"])
        #expect(ThemeStore.defaultSearchPaths(environment: ["XDG_CONFIG_HOME": "/x", "HOME": "/home/u"]) == ["/x/lrtop/themes"])
        #expect(ThemeStore.defaultSearchPaths(environment: [:]) == [])
    }

    /// The one loader every command uses: a user's file replaces a built-in, problems in it are diagnostics, an
    /// unknown name or an unreadable file is an error naming what there is and where it looked.
    @Test func resolveIsTheOneLoader() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtui-resolve-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "theme[lr_line]=\"#010203\"\ntheme[nope]=\"#000000\"\n".write(to: dir.appendingPathComponent("light.theme"),
                                                                       atomically: true, encoding: .utf8)
        let store = ThemeStore(searchPaths: [dir.path])
        #expect(try store.resolve(nil).theme == Theme.builtinDefault)
        let light = try store.resolve("light")
        #expect(light.theme["lr_line"] == .rgb(RGB(1, 2, 3)))
        #expect(light.diagnostics == ["theme 'light': line 2: unknown key 'nope', ignored"])
        #expect(try store.resolve("mono").diagnostics.isEmpty)
        #expect(throws: ThemeError.self) { try store.resolve("nosuch") }
        do { _ = try store.resolve("nosuch") } catch {
            #expect("\(error)".hasPrefix("unknown theme 'nosuch': available themes are default, basic, colorblind"))
            #expect("\(error)".contains("looked for in \(dir.path)"))
        }
        #expect(throws: ThemeError.self) { try store.resolve(dir.path + "/missing.theme") }
        #expect(try store.resolve(dir.appendingPathComponent("light.theme").path).theme.name == "light")
    }
}
