import Foundation
import LRLog

/// `lrtop bench --tui`: what the terminal UI costs the training it watches.
///
/// The same short run is trained by two child processes, alternately: one headless, one with the full UI drawing
/// into a pseudo-terminal (120x40, xterm-256color) that this process reads and discards, as a terminal would. Each
/// one's speed comes from its own run log: the wall time between consecutive steps, leaving out the intervals that
/// hold an epoch-end evaluation, so both pay exactly the same work.
struct TUIOverheadBench {
    let steps: Int
    let repeats: Int
    let data: String?
    let batchSize: Int
    let threads: Int

    struct Figures: Codable {
        var headless_samples_per_s: Double
        var tui_samples_per_s: Double
        var overhead_percent: Double
        var steps: Int
        var repeats: Int
    }

    func run(json: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lrtop-tui-bench-\(getpid())")
        do { try SafeFiles.prepareFolder(dir, what: "the benchmark's folder", instead: "set TMPDIR to a folder of yours") } catch {
            throw CLIError(error.message)
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        var headless: [Double] = [], tui: [Double] = []
        for r in 0..<max(1, repeats) {
            headless.append(try measure(ui: false, dir: dir.appendingPathComponent("h\(r)")))
            tui.append(try measure(ui: true, dir: dir.appendingPathComponent("t\(r)")))
        }
        // Best of each: the run least disturbed by anything else on the machine.
        let h = headless.max()!, t = tui.max()!
        let figures = Figures(headless_samples_per_s: h, tui_samples_per_s: t, overhead_percent: 100 * (h - t) / h,
                              steps: steps, repeats: repeats)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            printOut(String(decoding: try encoder.encode(figures), as: UTF8.self))
        } else {
            printOut(String(format: "lrtop bench --tui: headless %.0f samples/s, with the UI on a pseudo-terminal %.0f samples/s: the UI costs %.1f%% (best of %d, %d steps each)",
                         h, t, figures.overhead_percent, repeats, steps))
        }
    }

    private func measure(ui: Bool, dir: URL) throws -> Double {
        let log = dir.appendingPathComponent("run.jsonl")
        var args = ["train", "--max-steps", "\(steps)", "--epochs", "1000", "--batch-size", "\(batchSize)",
                    "--scheduler", "constant", "--guard-factor", "0", "--threads", "\(threads)",
                    "--run-dir", dir.path, "--log", log.path]
        if let data { args += ["--data", data] }
        args += ui ? ["--exit-when-done", "--pace", "off"] : ["--headless"]
        let status = try ui ? runInPseudoTerminal(args) : runQuietly(args)
        guard status == 0 else { throw CLIError("the \(ui ? "UI" : "headless") benchmark run failed (exit \(status))") }
        return try samplesPerSecond(log)
    }

    /// Samples/s from the log: step-to-step wall time, without the first 10% (warm-up) and without intervals
    /// that contain an evaluation.
    private func samplesPerSecond(_ url: URL) throws -> Double {
        let run = try RunLogReader.readRun(at: url, name: "bench")
        let s = run.steps
        let perEpoch = run.header?.stepsPerEpoch ?? Int.max
        var seconds = 0.0, count = 0
        for i in max(1, s.count / 10)..<s.count where s.step[i - 1] % perEpoch != 0 {
            seconds += s.wallTime[i] - s.wallTime[i - 1]
            count += 1
        }
        guard count > 0, seconds > 0 else { throw CLIError("the benchmark run logged too few steps") }
        return Double(count * batchSize) / seconds
    }

    /// This very binary, as the kernel knows it.
    private var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executableURL?.resolvingSymlinksInPath().path ?? "lrtop"
    }

    private func runQuietly(_ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Runs lrtop with a pseudo-terminal as its stdin/stdout/stderr and drains everything it draws.
    private func runInPseudoTerminal(_ args: [String]) throws -> Int32 {
        var master: Int32 = 0, slave: Int32 = 0
        var size = winsize(ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0)
        guard openpty(&master, &slave, nil, nil, &size) == 0 else { throw CLIError("cannot open a pseudo-terminal") }
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_adddup2(&actions, slave, fd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, 0x80)  // POSIX_SPAWN_SETSID (glibc 2.26+): the pty becomes its terminal
        var env = ProcessInfo.processInfo.environment
        env["TERM"] = "xterm-256color"
        env["LANG"] = env["LANG"] ?? "C.UTF-8"
        let argv = [executable] + args
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for a in cargs + cenv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, cargs, cenv)
        close(slave)
        guard rc == 0 else { close(master); throw CLIError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        // Read what it draws until it exits (EIO once the child side is closed).
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(master, &buffer, buffer.count)
            if n <= 0 && errno != EINTR { break }
        }
        close(master)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
