import Foundation
import Glibc
import Testing

/// `lrtop train` serves its run like a bridged one (#25 "Every run has a socket"): a registry entry while it lives,
/// the reason it ended in its last status, a second viewer beside its own screen, and `d` to detach the screen.
@Suite(.serialized)
struct ServedRunEndToEndTests {
    static func entries(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
    }

    static func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    @Test func aHeadlessRunIsRegisteredWhileItLivesAndSaysWhyItEndedBeforeItsSocketCloses() throws {
        let dir = try TempDir("lrtop-served")
        defer { dir.cleanup() }
        let run = try HeadlessRun(dir, steps: 3000)
        defer { run.stop() }
        #expect(Self.waitFor(60) { Self.entries(run.registry).count == 1 }, "no registry entry")
        let name = try #require(Self.entries(run.registry).first)
        let pid = run.process.processIdentifier
        #expect(name.hasPrefix("\(Self.host())-\(pid)-") && name.count == "\(Self.host())-\(pid)-12345678.json".count)
        var st = stat()
        #expect(lstat(run.registry + "/" + name, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(lstat(run.registry, &st) == 0 && st.st_mode & 0o777 == 0o700)
        let data = try Data(contentsOf: URL(fileURLWithPath: run.registry + "/" + name))
        let entry = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(entry["registry"] as? Int == 1 && entry["kind"] as? String == "lrtop" && entry["pid"] as? Int == Int(pid))
        #expect(entry["name"] as? String == "r" && entry["run_dir"] as? String == dir.path("r")
                && entry["log"] as? String == dir.path("r/run.jsonl"))
        #expect(entry["world_size"] as? Int == 1 && entry["rank"] as? Int == 0 && entry["start"] as? String != nil)
        #expect(abs((entry["heartbeat"] as? Double ?? 0) - Date().timeIntervalSince1970) < 30)
        let socket = try #require(entry["socket"] as? String)
        #expect(SharedProtocolTests.socketInHeader(of: dir.path("r/run.jsonl")) == socket, "the header names the same socket")

        let peer = try ProtocolPeer(socket)
        #expect(try peer.next(timeout: 30) { $0["type"] as? String == "status" && ($0["step"] as? Int ?? 0) > 3 } != nil)
        kill(pid, SIGTERM)
        var last: [String: Any]? = nil
        while let status = try? peer.next(timeout: 30, { $0["type"] as? String == "status" }) { last = status }
        #expect(last?["state"] as? String == "stopped", "\(last ?? [:])")
        #expect(last?["ended"] as? String == "SIGTERM", "\(last ?? [:])")
        run.process.waitUntilExit()
        #expect(Self.entries(run.registry).isEmpty, "the entry is removed at exit")
        #expect(access(socket, F_OK) != 0, "the socket is removed at exit")
    }

    @Test func aRegistryFolderOthersCanWriteIsRefusedInOneLineAndTheRunGoesOn() throws {
        let dir = try TempDir("lrtop-served-refused")
        defer { dir.cleanup() }
        let folder = dir.path("state/lrtop/runs")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        chmod(folder, 0o777)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--max-steps", "20",
                             "--run-dir", "r"], in: dir.url, timeout: 120, environment: ["XDG_STATE_HOME": dir.path("state")])
        #expect(out.status == 0, "\(out.stderr)")
        let warnings = out.stderr.split(separator: "\n").filter { $0.contains("run registry") }
        #expect(warnings.count == 1 && warnings[0].contains("writable by others"), "\(out.stderr)")
        #expect(Self.entries(folder).isEmpty)
    }

    /// The live UI keeps its socket: a second viewer sees the run and steers it while the screen is open.
    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func aSecondViewerSteersARunWhoseOwnScreenIsOpen() throws {
        let dir = try TempDir("lrtop-served-ui")
        defer { dir.cleanup() }
        let tui = try TmuxSession(command: "XDG_STATE_HOME=\(dir.path("state")) \(lrtopBinary.path) train --data synthetic:spirals --hidden 16 --pace 10/s --epochs 50 --scheduler constant --run-dir r",
                                  directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("running", timeout: 60)
        let socket = try #require(SharedProtocolTests.socketInHeader(of: dir.path("r/run.jsonl")))
        let peer = try ProtocolPeer(socket)
        #expect(try peer.next { $0["type"] as? String == "hello" }?["framework"] as? String == "lrtop")
        try peer.send(Array("{\"type\":\"command\",\"id\":1,\"text\":\"lr 0.0123\"}\n".utf8))
        let result = try peer.next(timeout: 30) { $0["type"] as? String == "result" }
        #expect(result?["ok"] as? Bool == true, "\(result ?? [:])")
        try tui.waitFor("lr 0.0123", timeout: 20)
        try tui.send("q")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=", timeout: 60)
    }

    /// `d`: the screen closes, the shell gets its prompt back, the run goes on; `lrtop attach RUN_DIR` shows it still
    /// stepping and steers it.
    @Test(.enabled(if: tmuxInstalled, "needs tmux"))
    func detachingTheScreenGivesThePromptBackAndAttachSteersTheRunThatGoesOn() throws {
        let dir = try TempDir("lrtop-detach")
        defer { dir.cleanup() }
        let state = dir.path("state")
        let tui = try TmuxSession(command: "XDG_STATE_HOME=\(state) \(lrtopBinary.path) train --data synthetic:spirals --hidden 16 --pace 10/s --epochs 50 --scheduler constant --run-dir r",
                                  directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("d detach", timeout: 60)
        try tui.send("d")
        let screen = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(screen.contains("detached: run r goes on (pid "), "\(screen)")
        let entry = try #require(Self.entries(state + "/lrtop/runs").first, "the run left the registry")
        let pid = try #require(Int32(entry.split(separator: "-")[1]))
        defer { kill(pid, SIGKILL) }
        #expect(kill(pid, 0) == 0, "the run goes on")
        // SIGHUP no longer ends it (the terminal it started in may close).
        kill(pid, SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(kill(pid, 0) == 0, "SIGHUP ended the detached run")

        let viewer = try TmuxSession(command: "\(lrtopBinary.path) attach r", directory: dir.url)
        defer { viewer.close() }
        let before = try viewer.waitFor("step ", timeout: 30)
        func step(_ s: String) -> Int? {
            guard let r = s.range(of: #"step (\d+)/"#, options: .regularExpression) else { return nil }
            return Int(s[r].dropFirst(5).dropLast())
        }
        let first = step(before) ?? 0
        #expect(try viewer.waitUntil(timeout: 20) { (step($0) ?? 0) > first + 5 }, "the run is not stepping")
        try viewer.send(":")
        try viewer.type("lr 0.0321")
        try viewer.send("Enter")
        try viewer.waitFor("✓ lr 0.0321", timeout: 30)
        let log = try readLog(dir.path("r/run.jsonl"))
        #expect(records(log, type: "event").contains { $0["text"] as? String == "lr 0.0321" })
        // Progress lines went to the run's console log, not the terminal it left.
        kill(pid, SIGTERM)
        #expect(Self.waitFor(30) { kill(pid, 0) != 0 }, "SIGTERM did not end it")
        let console = (try? String(contentsOfFile: dir.path("r/console.log"), encoding: .utf8)) ?? ""
        #expect(console.contains("received SIGTERM"), "\(console)")
        #expect(Self.entries(state + "/lrtop/runs").isEmpty)
    }

    static func host() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(name.split(separator: ".").first ?? "")
    }
}
