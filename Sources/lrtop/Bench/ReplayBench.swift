import Foundation
import LRLog
import LRTUI

/// `lrtop bench --replay`: the load times of `LRLog.ReplayBenchmark`, then the replay path as `lrtop replay` runs it
/// (RunLoader → ReplaySource bulk build → Dashboard frame into a 160×48 buffer) on the generated run log and event
/// file, seeks, and the peak memory (VmHWM) of each.
///
/// The metrics case (wandb#12527's: 20 metrics logged every step): a 50,000-step and a `steps`-step log of 20 metrics,
/// each opened to its first frame, then the metrics grid drawn at 200×60.
struct ReplayBench {
    enum Part: String, CaseIterable { case base, metrics }

    let steps: Int
    var parts: Set<Part> = Set(Part.allCases)
    static let size = (width: 160, height: 48)
    static let gridSize = (width: 200, height: 60)
    /// The metric case: this many metrics per step, in a short run and in a `steps`-step one.
    static let metricCount = 20
    static let shortMetricSteps = 50_000

    func run(json: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-replay-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var r: [String: Double] = ["steps": Double(steps), "load_average_1m": Self.loadAverage()]
        if parts.contains(.base) {
            for (k, v) in try ReplayBenchmark.run(steps: steps, directory: dir, keepFiles: true) { r[k] = v }
            let log = dir.appendingPathComponent("bench-run.jsonl")
            let tb = dir.appendingPathComponent("events.out.tfevents.0.bench")
            for (prefix, url) in [("jsonl", log), ("tb", tb)] {
                for (k, v) in try measure(url) { r[prefix + "_" + k] = v }
            }
            try? FileManager.default.removeItem(at: log)
            try? FileManager.default.removeItem(at: tb)
        }
        if parts.contains(.metrics) {
            for (prefix, n) in [("metrics_short", Self.shortMetricSteps), ("metrics_long", steps)] {
                let url = dir.appendingPathComponent("bench-metrics-\(n).jsonl")
                let t = monotonic()
                try ReplayBenchmark.writeMetricLog(steps: n, metrics: Self.metricCount, to: url)
                r[prefix + "_write_s"] = monotonic() - t
                r[prefix + "_steps"] = Double(n)
                r[prefix + "_mb"] = ReplayBenchmark.fileMB(url)
                for (k, v) in try measureMetrics(url, steps: n) { r[prefix + "_" + k] = v }
                try? FileManager.default.removeItem(at: url)
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            printOut(String(decoding: try encoder.encode(r), as: UTF8.self))
        } else {
            printOut(Self.text(r))
        }
    }

    /// Opens a file as `lrtop replay` does (RunLoader → ReplaySource bulk build → Dashboard) and draws its first
    /// frame into a buffer of `size`: the `open_*` figures, peak RSS from a reset (VmHWM) included.
    func open(_ url: URL, lastStep: Int, size: (width: Int, height: Int))
        throws -> (source: ReplaySource, dashboard: Dashboard, buffer: Buffer, figures: [String: Double]) {
        var r: [String: Double] = [:]
        ReplayBenchmark.resetPeak()
        r["open_base_rss_mb"] = ReplayBenchmark.memory().rss
        let cpu0 = Self.cpuSeconds()
        let t0 = monotonic()
        var runs: [RunData]? = try RunLoader.load(url).runs
        let t1 = monotonic()
        let source = ReplaySource(runs: runs!)
        runs = nil  // as in `lrtop replay`: the source holds the only copy
        let dashboard = source.makeDashboard()
        dashboard.update()
        let t2 = monotonic()
        var buffer = Buffer(width: size.width, height: size.height)
        dashboard.render(into: &buffer)
        let t3 = monotonic()
        precondition(buffer.lines().joined().contains(Format.grouped(lastStep)), "the first frame lacks the last step")
        r["open_load_s"] = t1 - t0
        r["open_build_s"] = t2 - t1
        r["open_frame_s"] = t3 - t2
        r["open_first_frame_s"] = t3 - t0
        // CPU time beside wall time: on a shared machine the wall clock also counts the others' work.
        r["open_cpu_s"] = Self.cpuSeconds() - cpu0
        r["open_peak_rss_mb"] = ReplayBenchmark.memory().peak
        r["open_rss_mb"] = ReplayBenchmark.memory().rss
        return (source, dashboard, buffer, r)
    }

    /// Seconds of `count` frames in a row (update + render), as the UI loop draws them.
    func frameTimes(_ dashboard: Dashboard, _ buffer: inout Buffer, count: Int) -> [Double] {
        (0..<count).map { _ in
            let t = monotonic()
            dashboard.update()
            dashboard.render(into: &buffer)
            return monotonic() - t
        }
    }

    /// Open + first frame, a steady frame, seeks, and peak RSS for one file.
    func measure(_ url: URL) throws -> [String: Double] {
        var (source, dashboard, buffer, r) = try open(url, lastStep: steps, size: Self.size)
        r["frame_ms"] = frameTimes(dashboard, &buffer, count: 5).min()! * 1000
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

    /// The metrics case for one log: open + first frame (the main view), then the grid of every metric at 200×60:
    /// its first frame, a steady frame, a frame with the cursor on (every chart reads its value there), and peak RSS.
    func measureMetrics(_ url: URL, steps n: Int) throws -> [String: Double] {
        var (source, dashboard, buffer, r) = try open(url, lastStep: n, size: Self.gridSize)
        _ = dashboard.perform(.metricsView)
        let t4 = monotonic()
        dashboard.update()
        dashboard.render(into: &buffer)
        r["grid_first_frame_ms"] = (monotonic() - t4) * 1000
        let charts = dashboard.metricsGridNames.count
        let drawn = buffer.lines().joined().components(separatedBy: "╭─").count - 1
        precondition(charts >= Self.metricCount && drawn == charts,
                     "the grid at 200x60 draws \(drawn) of \(charts) charts:\n" + buffer.lines().joined(separator: "\n"))
        let frames = frameTimes(dashboard, &buffer, count: 10)
        r["grid_frame_ms"] = frames.min()! * 1000
        r["grid_frame_mean_ms"] = frames.reduce(0, +) / Double(frames.count) * 1000
        _ = dashboard.perform(.metricsGrid(.toggleCursor))
        _ = dashboard.handle(.left)
        r["grid_cursor_frame_ms"] = frameTimes(dashboard, &buffer, count: 10).min()! * 1000
        withExtendedLifetime((source, dashboard)) {}
        return r
    }

    static func text(_ r: [String: Double]) -> String {
        func f(_ k: String, _ digits: Int = 2) -> String { r[k].map { String(format: "%.\(digits)f", $0) } ?? "-" }
        let n = Int(r["steps"] ?? 0)
        var out = "lrtop bench --replay: \(Format.grouped(n)) steps, load average \(f("load_average_1m"))"
        if r["jsonl_mb"] != nil {
            out += """

              run log     \(f("jsonl_mb", 0)) MB: load \(f("jsonl_load_s")) s; open + first frame \(f("jsonl_open_first_frame_s")) s \
            (load \(f("jsonl_open_load_s")) + build \(f("jsonl_open_build_s")) + frame \(f("jsonl_open_frame_s", 3)); \
            CPU \(f("jsonl_open_cpu_s")) s), \
            peak RSS \(f("jsonl_open_peak_rss_mb", 0)) MB
              event file  \(f("tb_mb", 0)) MB: load \(f("tb_load_s")) s (\(f("tb_load_no_crc_s")) s without CRC checks); \
            open + first frame \(f("tb_open_first_frame_s")) s, peak RSS \(f("tb_open_peak_rss_mb", 0)) MB
              frame (160x48) \(f("jsonl_frame_ms", 1)) ms; seek + frame: mean \(f("jsonl_seek_mean_ms", 1)) ms, \
            max \(f("jsonl_seek_max_ms", 1)) ms over \(Int(r["jsonl_seeks"] ?? 0)) seeks in every zoom
            """
        }
        for prefix in ["metrics_short", "metrics_long"] where r[prefix + "_mb"] != nil {
            func g(_ k: String, _ digits: Int = 2) -> String { f(prefix + "_" + k, digits) }
            out += """

              \(Format.grouped(Int(r[prefix + "_steps"] ?? 0))) steps × \(metricCount) metrics, \(g("mb", 0)) MB: \
            open + first frame \(g("open_first_frame_s")) s (load \(g("open_load_s")) + build \(g("open_build_s")) + \
            frame \(g("open_frame_s", 3)); CPU \(g("open_cpu_s")) s), peak RSS \(g("open_peak_rss_mb", 0)) MB; metrics grid \(gridSize.width)x\(gridSize.height): \
            first \(g("grid_first_frame_ms", 1)) ms, frame \(g("grid_frame_ms", 2)) ms (mean \(g("grid_frame_mean_ms", 2))), \
            with the cursor \(g("grid_cursor_frame_ms", 2)) ms
            """
        }
        return out
    }

    /// User + system CPU seconds of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func loadAverage() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first, let v = Double(first) else { return .nan }
        return v
    }

    private func monotonic() -> Double { ReplaySource.monotonicSeconds() }
}
