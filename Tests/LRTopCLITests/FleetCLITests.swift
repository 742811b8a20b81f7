import Foundation
import Testing

/// `lrtop ls` and `lrtop attach NAME|PID` from a folder that holds no runs, against a real PyTorch loop
/// (python/examples/plain_loop.py in the venv) whose socket folder and registry sit in a private place.
@Suite(.serialized, .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct FleetCLITests {
    let slow: TimeInterval = 180

    /// The environment of the run and of every lrtop command: its own runtime folder (socket folder) and state
    /// folder (registry).
    static func environment(_ dir: TempDir) throws -> [String: String] {
        for folder in ["rt", "state"] {
            try FileManager.default.createDirectory(atPath: dir.path(folder), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        return ["XDG_RUNTIME_DIR": dir.path("rt"), "XDG_STATE_HOME": dir.path("state")]
    }

    static func objects(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Waits up to a minute for `text` to appear in the file at `path`.
    static func waitFor(_ text: String, in path: String) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains(text) { return true }
            usleep(100_000)
        }
        return false
    }

    @Test func lsListsALiveRunFromAnyFolderAndAttachFindsItByNameAndPid() throws {
        let dir = try TempDir("lrtop-fleet")
        defer { dir.cleanup() }
        let elsewhere = try TempDir("lrtop-fleet-elsewhere")
        defer { elsewhere.cleanup() }
        let env = try Self.environment(dir)
        let name = "fleet-\(UUID().uuidString.prefix(6).lowercased())"
        let run = try AttachEndToEndTests.TorchRun(dir, name: name, stepDelay: 0.05, environment: env)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "\(run.output)")
        let pid = Int(run.process.processIdentifier)

        // --json: one object per run, the spec's fields.
        let ls = try lrtop(["ls", "--json"], in: elsewhere.url, timeout: 60, environment: env)
        #expect(ls.status == 0, "\(ls.stderr)")
        let mine = Self.objects(ls.stdout).first { $0["name"] as? String == name }
        #expect(mine?["pid"] as? Int == pid, "\(ls.stdout)")
        #expect(mine?["kind"] as? String == "plain" && mine?["state"] as? String == "running", "\(ls.stdout)")
        #expect((mine?["step"] as? Int ?? 0) >= 5 && mine?["host"] as? String != nil, "\(ls.stdout)")
        #expect((mine?["lrs"] as? [Double])?.isEmpty == false, "\(ls.stdout)")
        #expect((mine?["log"] as? String)?.hasSuffix("runs/\(name)/run.jsonl") == true, "\(ls.stdout)")
        #expect((mine?["socket"] as? String)?.hasPrefix(dir.path("rt") + "/lrtop-") == true, "\(ls.stdout)")
        for key in ["total_steps", "loss", "steps_per_s", "eta_s"] { #expect(mine?.keys.contains(key) == true, "\(key)") }

        // The text table: a header and the run's row.
        let table = try lrtop(["ls"], in: elsewhere.url, timeout: 60, environment: env)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("HOST") == true && lines.first?.contains("STATE") == true, "\(table.stdout)")
        #expect(lines.contains { $0.contains(name) && $0.contains(" running ") && $0.contains(" \(pid) ") }, "\(table.stdout)")

        // attach PID, and attach NAME, from elsewhere follow it.
        let byPid = elsewhere.path("pid.out"), byName = elsewhere.path("name.out")
        let pidViewer = try spawnInBackground([lrtopBinary.path, "attach", String(pid), "--headless", "--json"], output: byPid, environment: env)
        defer { kill(pidViewer, SIGKILL); var s: Int32 = 0; waitpid(pidViewer, &s, 0) }
        #expect(Self.waitFor(#""type":"header""#, in: byPid))
        let attach = try spawnInBackground([lrtopBinary.path, "attach", name, "--headless", "--progress-every", "1"],
                                           output: byName, environment: env)
        defer { kill(attach, SIGKILL); var s: Int32 = 0; waitpid(attach, &s, 0) }
        #expect(Self.waitFor("step ", in: byName))

        // The run dies: the viewers end (exit 1, the run lost); attach by name then says what became of it and
        // how to replay it, and ls no longer lists it.
        run.killHard()
        var status: Int32 = 0
        let waited = Date()
        while waitpid(attach, &status, WNOHANG) == 0 && Date().timeIntervalSince(waited) < 30 { usleep(100_000) }
        #expect(Date().timeIntervalSince(waited) < 30, "attach did not end with the run")
        let ended = try lrtop(["attach", name, "--headless", "--runs", dir.path("runs")], in: elsewhere.url, timeout: 60, environment: env)
        #expect(ended.status == 1)
        #expect(ended.stderr.contains("lrtop replay \(dir.path("runs"))/\(name)/run.jsonl"), "\(ended.stderr)")
        let after = try lrtop(["ls", "--json"], in: elsewhere.url, timeout: 60, environment: env)
        #expect(!after.stdout.contains(name), "\(after.stdout)")
    }

    @Test func lsListsAHeadlessLrtopTrainRunWithItsProgressFigures() throws {
        let dir = try TempDir("lrtop-fleet-swift")
        defer { dir.cleanup() }
        let run = try HeadlessRun(dir, steps: 3000)
        defer { run.stop() }
        let pid = Int(run.process.processIdentifier)
        let env = ["XDG_STATE_HOME": dir.path("state")]
        var mine: [String: Any]?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && (mine?["step"] as? Int ?? 0) < 5 {
            let ls = try lrtop(["ls", "--json"], timeout: 60, environment: env)
            mine = Self.objects(ls.stdout).first { $0["pid"] as? Int == pid }
            usleep(300_000)
        }
        #expect(mine?["kind"] as? String == "lrtop" && mine?["state"] as? String == "running", "\(mine ?? [:])")
        #expect(mine?["name"] as? String == "r" && mine?["log"] as? String == dir.path("r/run.jsonl"), "\(mine ?? [:])")
        #expect(mine?["loss"] as? Double != nil && mine?["steps_per_s"] as? Double != nil, "\(mine ?? [:])")
        #expect(mine?["total_steps"] as? Int != nil && (mine?["lrs"] as? [Double])?.isEmpty == false, "\(mine ?? [:])")
    }

    @Test func attachToANameNothingHasSaysWhereItLooked() throws {
        let dir = try TempDir("lrtop-fleet-none")
        defer { dir.cleanup() }
        let env = try Self.environment(dir)
        let out = try lrtop(["attach", "no-such-run", "--headless"], in: dir.url, timeout: 60, environment: env)
        #expect(out.status == 1)
        #expect(out.stderr.contains("no-such-run: no live run of that name or pid") && out.stderr.contains("looked in the registry \(dir.path("state"))/lrtop/runs"), "\(out.stderr)")
        let ls = try lrtop(["ls"], in: dir.url, timeout: 60, environment: env)
        #expect(ls.status == 0, "\(ls.stderr)")
    }
}

/// Another host's runs in the fleet (issue #26): `lrtop ls HOST --json` follows each run there through the master
/// connection (its socket forwarded), over a real OpenSSH server on loopback with a real PyTorch loop "there".
@Suite(.serialized, .enabled(if: sshdUnavailable == nil, "\(sshdUnavailable ?? "")"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct RemoteFleetCLITests {
    @Test func lsJSONOfAHostGivesEachRunsStatusOverSSHAndAnUnreachableHostInOneLine() throws {
        let world = try SSHWorld()
        defer { world.close() }
        let dir = try TempDir("lrtop-remote-fleet")
        defer { dir.cleanup() }
        let run = try AttachEndToEndTests.TorchRun(dir, name: "far-fleet", environment: world.remoteEnvironment)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: 180), "the PyTorch run did not start:\n\(run.output)")

        let ls = try lrtop(["ls", "loop", "--json"], timeout: 90, environment: world.lrtopEnvironment)
        #expect(ls.status == 0, "\(ls.stderr)")
        let mine = FleetCLITests.objects(ls.stdout).first { $0["name"] as? String == "far-fleet" }
        #expect(mine?["host"] as? String == "loop" && mine?["state"] as? String == "running", "\(ls.stdout)")
        #expect(mine?["pid"] as? Int == Int(run.process.processIdentifier) && (mine?["step"] as? Int ?? 0) >= 5, "\(ls.stdout)")
        #expect((mine?["lrs"] as? [Double])?.isEmpty == false && mine?["log"] as? String == run.log, "\(ls.stdout)")

        let bad = try lrtop(["ls", "loop", "closed", "--json"], timeout: 90, environment: world.lrtopEnvironment)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("far-fleet"), "\(bad.stdout)")
        let errors = bad.stderr.split(separator: "\n")
        #expect(errors.count == 1 && errors[0].hasPrefix("lrtop: error: ") && errors[0].contains("closed"), "\(bad.stderr)")
    }
}
