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
        #expect(Self.waitFor(#""type":"header""#, in: byPid))
        kill(pidViewer, SIGTERM)
        var status: Int32 = 0
        waitpid(pidViewer, &status, 0)
        let attach = try spawnInBackground([lrtopBinary.path, "attach", name, "--headless", "--progress-every", "1"],
                                           output: byName, environment: env)
        #expect(Self.waitFor("step ", in: byName))
        // The run ends (SIGTERM): the viewer ends with it.
        kill(run.process.processIdentifier, SIGTERM)
        #expect(run.waitForExit(timeout: 60))
        let waited = Date()
        while waitpid(attach, &status, WNOHANG) == 0 && Date().timeIntervalSince(waited) < 30 { usleep(100_000) }
        #expect(Date().timeIntervalSince(waited) < 30, "attach did not end with the run")

        // Ended: attach by name says so and how to replay it; ls no longer lists it.
        let ended = try lrtop(["attach", name, "--headless", "--runs", dir.path("runs")], in: elsewhere.url, timeout: 60, environment: env)
        #expect(ended.status == 1)
        #expect(ended.stderr.contains("the run \(name) has ended (") && ended.stderr.contains("lrtop replay \(dir.path("runs"))/\(name)/run.jsonl"), "\(ended.stderr)")
        let after = try lrtop(["ls", "--json"], in: elsewhere.url, timeout: 60, environment: env)
        #expect(!after.stdout.contains(name), "\(after.stdout)")
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
