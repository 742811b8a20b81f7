import Foundation
import Testing

/// The shared fixtures: `LRTOP_FIXTURES_DIR`, else `../shared/fixtures` beside the package root.
let fixturesDir: URL = {
    if let dir = ProcessInfo.processInfo.environment["LRTOP_FIXTURES_DIR"], !dir.isEmpty {
        return URL(fileURLWithPath: dir)
    }
    let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // LRLogTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()
    return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
}()

/// A fresh empty folder for one test.
func temporaryDirectory(_ name: String = #function) throws -> URL {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("lrlog-tests-\(getpid())-\(safe)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}

func append(_ text: String, to url: URL) throws {
    let handle = try FileHandle(forWritingTo: url)
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(text.utf8))
    try handle.close()
}

/// Equal as Float32 values (the precision TensorBoard stores), allowing one ulp of rounding.
func sameFloat32(_ a: Double, _ b: Double) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    let fa = Float(a), fb = Float(b)
    return fa == fb || abs(fa - fb) <= fa.ulp.magnitude
}

/// NaN-aware equality for records compared after a round trip.
func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

let sampleHeader = RunHeaderSample.header

enum RunHeaderSample {
    static let header = (
        lrtopVersion: "0.1.0",
        config: ["optimizer": "adamw", "lr": "0.001", "note": "quote \" and backslash \\ and tab\t"],
        seed: UInt64.max - 5,
        startTime: "2025-11-25T02:50:00Z",
        groups: ["decay", "no_decay"]
    )
}
