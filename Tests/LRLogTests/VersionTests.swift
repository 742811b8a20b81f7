import Foundation
import Testing
import LRLog

/// One version for the binary, the Python package and the wheel, and the bridge protocol's beside it: both live in
/// python/lrtop/_version.py; Sources/LRLog/Version.swift is generated from it (scripts/generate-builtins).
@Suite struct VersionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `NAME = VALUE` in a Python file, the value as written.
    static func assignment(_ name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " = ") {
            return String(line.dropFirst(name.count + 3)).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    @Test func swiftVersionIsThePythonPackages() throws {
        let source = try String(contentsOf: Self.root.appendingPathComponent("python/lrtop/_version.py"), encoding: .utf8)
        let stale = "Sources/LRLog/Version.swift is out of date: run scripts/generate-builtins"
        #expect(Self.assignment("__version__", in: source) == "\"\(LRTopVersion.release)\"", "\(stale)")
        #expect(Self.assignment("PROTOCOL", in: source) == "\(LRTopVersion.bridgeProtocol)", "\(stale)")
    }

    /// The package's metadata reads the version from _version.py; no second copy to drift.
    @Test func pyprojectHasNoVersionOfItsOwn() throws {
        let pyproject = try String(contentsOf: Self.root.appendingPathComponent("python/pyproject.toml"), encoding: .utf8)
        #expect(pyproject.contains(#"dynamic = ["version"]"#))
        let versionLines = pyproject.split(separator: "\n").filter { $0.hasPrefix("version =") }
        #expect(versionLines == [#"version = { attr = "lrtop._version.__version__" }"#])
    }
}
