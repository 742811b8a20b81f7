import Foundation
import Testing

/// The built-in themes are part of the binary: a copy anywhere (or the one pip installs) has all six, and the only
/// themes read from disk are the user's, from the config folder `lrtop themes` names.
@Suite struct ThemesCLITests {
    static let sixBuiltIn = ["default", "basic", "colorblind", "high-contrast", "light", "mono"]

    @Test func aCopiedBinaryListsAllSixThemesAndSaysWhereItLooked() throws {
        let dir = try TempDir("lrtop-themes")
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(at: dir.url.appendingPathComponent("elsewhere"), withIntermediateDirectories: true)
        let copy = try copyOfBinary(to: dir.url.appendingPathComponent("elsewhere/lrtop"))
        let home = ["HOME": dir.path("home"), "XDG_CONFIG_HOME": "", "LRTOP_THEMES": ""]

        let out = try lrtop(["themes"], in: dir.url, environment: home, binary: copy)
        #expect(out.status == 0, "\(out.stderr)")
        var lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines.dropLast().map { String($0.prefix { $0 != " " }) } == Self.sixBuiltIn)
        #expect(lines.dropLast().allSatisfy { $0.contains("built in") })
        #expect(lines.last == "user themes: NAME.theme files, looked for in \(dir.path("home"))/.config/lrtop/themes (no such folder)")

        // A user's theme in the config folder is listed with its file; one named like a built-in replaces it.
        let themes = dir.url.appendingPathComponent("config/lrtop/themes")
        try FileManager.default.createDirectory(at: themes, withIntermediateDirectories: true)
        try "theme[lr_line]=\"#010203\"\n".write(to: themes.appendingPathComponent("mine.theme"), atomically: true, encoding: .utf8)
        try "theme[nope]=\"#010203\"\n".write(to: themes.appendingPathComponent("light.theme"), atomically: true, encoding: .utf8)
        let user = try lrtop(["themes"], in: dir.url, environment: ["XDG_CONFIG_HOME": dir.path("config"), "LRTOP_THEMES": ""],
                             binary: copy)
        lines = user.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("mine ") && $0.hasSuffix(themes.path + "/mine.theme") })
        #expect(lines.contains { $0.hasPrefix("light ") && $0.contains(themes.path + "/light.theme (replaces the built-in)")
                                 && $0.contains("unknown key 'nope', ignored") })
        #expect(lines.last == "user themes: NAME.theme files, looked for in \(themes.path) (2 .theme files)")
    }

    /// `--version` names the binary's, the Python package's and the bridge protocol's version (all one source).
    @Test func versionSaysAllThree() throws {
        let out = try lrtop(["--version"])
        #expect(out.status == 0)
        #expect(out.stdout.hasPrefix("lrtop ") && out.stdout.contains(" · Python package ")
                && out.stdout.contains(" · bridge protocol "), "\(out.stdout)")
    }
}
