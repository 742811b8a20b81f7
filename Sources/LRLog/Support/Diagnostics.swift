#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem that stops a file from being read at all. `description` is one line: "FILE: what is wrong".
public struct LogError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    /// The errno of the system call that failed, when one did (`SafeFiles.isOutOfSpace` tells a full disk).
    public let code: Int32?
    public init(_ message: String, code: Int32? = nil) { self.message = message; self.code = code }
    public var description: String { message }
}

/// Collects the one-line warnings of one read ("file:line: what"), capped so that a binary file
/// read by mistake cannot produce a million lines.
struct WarningList {
    static let limit = 100
    private(set) var lines: [String] = []
    private(set) var suppressed = 0

    mutating func add(_ line: String) {
        if lines.count < Self.limit { lines.append(line) } else { suppressed += 1 }
    }

    /// Counts `n` problems another list left out.
    mutating func addSuppressed(_ n: Int) { suppressed += n }

    /// The warnings, with a last line counting those not shown.
    func finished(file: String) -> [String] {
        suppressed == 0 ? lines : lines + ["\(file): \(suppressed) more problems not shown"]
    }
}

/// The current errno as text.
func errnoText() -> String { String(cString: strerror(errno)) }

/// Monotonic seconds.
@inline(__always) func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
