import Foundation
import Synchronization

public enum RunDirectory {
    /// `./runs/2026-11-25_14-03-22` (a suffix is added if that exists, so two runs started in the same second
    /// never share a folder).
    public static func makeDefault(base: URL = URL(fileURLWithPath: "runs"), prefix: String = "") throws -> URL {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        let stem = prefix + f.string(from: Date())
        var url = base.appendingPathComponent(stem)
        var n = 2
        while FileManager.default.fileExists(atPath: url.path) {
            url = base.appendingPathComponent("\(stem)-\(n)")
            n += 1
        }
        return url
    }
}

/// SIGINT/SIGTERM arrive here; the trainer checks at each step boundary and ends the run cleanly (log flushed,
/// end record written, final checkpoint saved).
public enum SignalFlag {
    private static let signal = Atomic<Int32>(0)
    public static var received: Bool { signal.load(ordering: .relaxed) != 0 }
    public static var name: String {
        switch signal.load(ordering: .relaxed) { case SIGINT: "SIGINT (Ctrl-C)"; case SIGTERM: "SIGTERM"; default: "a signal" }
    }
    public static func raise(_ sig: Int32) { signal.store(sig, ordering: .relaxed) }
    public static func reset() { signal.store(0, ordering: .relaxed) }

    /// Installs handlers that only record the signal (async-signal-safe); the loops that care check `received`.
    public static func install() {
        Foundation.signal(SIGINT) { SignalFlag.raise($0) }
        Foundation.signal(SIGTERM) { SignalFlag.raise($0) }
    }
}
