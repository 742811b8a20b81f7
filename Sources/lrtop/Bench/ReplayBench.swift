import Foundation
import LRLog
import LRTUI

/// `lrtop bench --replay`: the load times of `LRLog.ReplayBenchmark`, then the replay path as `lrtop replay` runs it
/// (RunLoader → ReplaySource bulk build → Dashboard frame into a 160×48 buffer) on the generated run log and event
/// file, seeks, and the peak memory (VmHWM) of each.
struct ReplayBench {
    let steps: Int
    static let size = (width: 160, height: 48)

    func run(json: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-replay-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var r = try ReplayBenchmark.run(steps: steps, directory: dir, keepFiles: true)
        r["load_average_1m"] = Self.loadAverage()
        let log = dir.appendingPathComponent("bench-run.jsonl")
        let tb = dir.appendingPathComponent("events.out.tfevents.0.bench")
        for (prefix, url) in [("jsonl", log), ("tb", tb)] {
            for (k, v) in try measure(url) { r[prefix + "_" + k] = v }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            printOut(String(decoding: try encoder.encode(r), as: UTF8.self))
        } else {
            printOut(Self.text(r))
        }
    }

    /// Open + first frame, a steady frame, seeks, and peak RSS for one file.
    func measure(_ url: URL) throws -> [String: Double] {
        var r: [String: Double] = [:]
        Self.resetPeak()
        r["open_base_rss_mb"] = ReplayBenchmark.memory().rss
        let t0 = monotonic()
        var runs: [RunData]? = try RunLoader.load(url).runs
        let t1 = monotonic()
        let source = ReplaySource(runs: runs!)
        runs = nil  // as in `lrtop replay`: the source holds the only copy
        let dashboard = source.makeDashboard()
        dashboard.update()
        let t2 = monotonic()
        var buffer = Buffer(width: Self.size.width, height: Self.size.height)
        dashboard.render(into: &buffer)
        let t3 = monotonic()
        precondition(buffer.lines().joined().contains(Format.grouped(steps)), "the first frame lacks the last step")
        r["open_load_s"] = t1 - t0
        r["open_build_s"] = t2 - t1
        r["open_frame_s"] = t3 - t2
        r["open_first_frame_s"] = t3 - t0
        r["open_peak_rss_mb"] = ReplayBenchmark.memory().peak
        r["open_rss_mb"] = ReplayBenchmark.memory().rss

        func frame() -> Double {
            let t = monotonic()
            dashboard.update()
            dashboard.render(into: &buffer)
            return monotonic() - t
        }
        var frames: [Double] = []
        for _ in 0..<5 { frames.append(frame()) }
        r["frame_ms"] = frames.min()! * 1000
        // Seeks as the keys send them, each followed by the frame that shows it.
        var seeks: [Double] = []
        let commands: [ReplayCommand] = [.goto(.start), .seek(.percent(10)), .goto(.step(steps / 2)), .seek(.percent(-1)),
                                         .event(next: true), .goto(.step(steps * 3 / 4)), .step(1), .seek(.percent(10)),
                                         .goto(.end)]
        for zoom in 0..<Dashboard.zoomLevels.count {
            for c in commands {
                let t = monotonic()
                _ = source.control(c)
                dashboard.update()
                dashboard.render(into: &buffer)
                seeks.append(monotonic() - t)
            }
            if zoom + 1 < Dashboard.zoomLevels.count { _ = dashboard.perform(.cycleZoom) }
        }
        r["seek_max_ms"] = seeks.max()! * 1000
        r["seek_mean_ms"] = seeks.reduce(0, +) / Double(seeks.count) * 1000
        r["seeks"] = Double(seeks.count)
        withExtendedLifetime((source, dashboard)) {}
        return r
    }

    static func text(_ r: [String: Double]) -> String {
        func f(_ k: String, _ digits: Int = 2) -> String { r[k].map { String(format: "%.\(digits)f", $0) } ?? "-" }
        let n = Int(r["steps"] ?? 0)
        return """
        lrtop bench --replay: \(Format.grouped(n)) steps, load average \(f("load_average_1m"))
          run log     \(f("jsonl_mb", 0)) MB: load \(f("jsonl_load_s")) s; open + first frame \(f("jsonl_open_first_frame_s")) s \
        (load \(f("jsonl_open_load_s")) + build \(f("jsonl_open_build_s")) + frame \(f("jsonl_open_frame_s", 3))), \
        peak RSS \(f("jsonl_open_peak_rss_mb", 0)) MB
          event file  \(f("tb_mb", 0)) MB: load \(f("tb_load_s")) s (\(f("tb_load_no_crc_s")) s without CRC checks); \
        open + first frame \(f("tb_open_first_frame_s")) s, peak RSS \(f("tb_open_peak_rss_mb", 0)) MB
          frame (160x48) \(f("jsonl_frame_ms", 1)) ms; seek + frame: mean \(f("jsonl_seek_mean_ms", 1)) ms, \
        max \(f("jsonl_seek_max_ms", 1)) ms over \(Int(r["jsonl_seeks"] ?? 0)) seeks in every zoom
        """
    }

    static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first, let v = Double(first) else { return .nan }
        return v
    }

    /// Resets VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs).
    static func resetPeak() {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "5", 1)
        close(fd)
    }

    private func monotonic() -> Double { ReplaySource.monotonicSeconds() }
}
