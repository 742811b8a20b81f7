import Foundation
import LRTensor

/// What watching costs: CPU of the UI thread and of the rest of the process (the trainer and its BLAS threads),
/// resident memory, BLAS threads. Read from /proc at most once a second, on the UI thread (a few small reads).
final class ProcessCost {
    private var last: (wall: Double, process: Double, ui: Double)?
    private var text: String?
    private var lastRead = 0.0

    /// One line for the status panel ("train 182% · ui 3% · rss 96M · blas 2"). Call it on the UI thread: the UI's
    /// share is that thread's CPU time.
    func summary() -> String? {
        let now = ProcessInfo.processInfo.systemUptime
        if text != nil, now - lastRead < 1 { return text }
        lastRead = now
        let process = Self.cpuSeconds(CLOCK_PROCESS_CPUTIME_ID), ui = Self.cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
        defer { last = (now, process, ui) }
        var parts: [String] = []
        if let last, now > last.wall {
            let dt = now - last.wall
            let uiShare = max(0, ui - last.ui) / dt
            let trainShare = max(0, (process - last.process) - (ui - last.ui)) / dt
            parts.append("train \(Int((trainShare * 100).rounded()))%")
            parts.append("ui \(Int((uiShare * 100).rounded()))%")
        } else {
            parts.append("cpu measuring…")
        }
        if let rss = Self.residentBytes() { parts.append("rss " + Self.bytes(rss)) }
        parts.append("blas \(BLAS.computeThreads)")
        text = parts.joined(separator: " · ")
        return text
    }

    static func cpuSeconds(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func residentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = s.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func bytes(_ n: Int) -> String {
        let m = Double(n) / 1_048_576
        return m >= 1024 ? String(format: "%.1fG", m / 1024) : "\(Int(m.rounded()))M"
    }
}
