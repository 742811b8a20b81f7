import Foundation
import Glibc
import Testing

/// `lrtop runs` across hosts (issue #26) over a real OpenSSH server on loopback (SSHWorld): a bridged PyTorch loop and
/// a headless `lrtop train` run started "there" are listed with their host, tagged and steered together; `attach
/// HOST:NAME` steers the lrtop run; `attach HOST:` with several live there opens the table; a registry on a shared
/// home leads `ls` and `runs` to another host's run without being told the host; and under a real one-node Slurm,
/// `runs --slurm` shows the job beside its run, and a pending job as a row of its own. (The sshd runs on this
/// machine: its survey lists this user's other runs in /tmp/lrtop-UID too, so rows are found by name.)
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: sshdUnavailable == nil, "\(sshdUnavailable ?? "")"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct RemoteRunsTableTests {
    typealias TorchRun = AttachEndToEndTests.TorchRun
    let slow: TimeInterval = 180

    /// A headless `lrtop train` run "there" (the remote's socket and registry folders), slowed to watch.
    final class TrainRun {
        let process = Process()
        let log: String
        init(_ dir: TempDir, name: String, environment: [String: String]) throws {
            log = dir.path("\(name)/run.jsonl")
            process.executableURL = lrtopBinary
            process.arguments = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--epochs", "0",
                                 "--max-steps", "1000000", "--pace", "20/s", "--run-dir", name]
            process.currentDirectoryURL = dir.url
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let out = dir.path("\(name).out")
            FileManager.default.createFile(atPath: out, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        func waitForSteps(_ steps: Int, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline && process.isRunning {
                if let log = try? readLog(log), records(log, type: "step").count >= steps { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        /// The run logged the command as applied (an event with its text).
        func applied(_ text: String, timeout: TimeInterval = 30) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let log = try? readLog(log), records(log, type: "event").contains(where: { $0["text"] as? String == text }) { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        func kill() {
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    func tmux(_ world: SSHWorld, _ command: String, in dir: TempDir, environment: [String: String]? = nil) throws -> TmuxSession {
        try TmuxSession(command: world.envPrefix(environment ?? world.lrtopEnvironment) + lrtopBinary.path + " " + command,
                        width: 200, height: 40, directory: dir.url)
    }

    /// Runs `act` on the row named `name` alone (found with the filter: the host may list this user's other runs
    /// too), then clears the filter.
    func onRow(_ tui: TmuxSession, _ name: String, _ act: () throws -> Void) throws {
        try tui.send("/")
        try tui.type(name)
        try tui.send("Enter")
        _ = try tui.waitFor("filter: \(name)")
        try act()
        try tui.send("Escape")
        #expect(try tui.waitUntil(timeout: 10) { !$0.contains("filter:") }, "\((try? tui.screen()) ?? "")")
    }

    func tag(_ tui: TmuxSession, _ name: String) throws { try onRow(tui, name) { try tui.send("Space") } }

    /// The screen line of the row named `name`.
    func line(_ screen: String, _ name: String) -> String? {
        screen.split(separator: "\n").first { $0.contains(" \(name) ") || $0.contains(" \(name)") }.map(String.init)
    }

    @Test func runsAcrossHostsTagsABridgedLoopAndAnLrtopRunThereAndSteersBoth() throws {
        let world = try SSHWorld()
        defer { world.close() }
        let dir = try TempDir("lrtop-remote-runs")
        defer { dir.cleanup() }
        let torch = try TorchRun(dir, name: "far-torch", environment: world.remoteEnvironment)
        defer { torch.killHard() }
        let train = try TrainRun(dir, name: "far-train", environment: world.remoteEnvironment)
        defer { train.kill() }
        #expect(torch.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(torch.output)")
        #expect(train.waitForSteps(5, timeout: slow), "the lrtop run did not start")

        // `lrtop runs loop`: both, with their host, reached over ssh.
        let tui = try tmux(world, "runs loop", in: dir)
        defer { tui.close() }
        _ = try tui.waitFor("lrtop runs", timeout: 30)
        var screen = try tui.waitFor("far-torch", timeout: 60)
        screen = try tui.waitFor("far-train", timeout: 60)
        #expect(screen.contains("host"), "\(screen)")
        #expect(line(screen, "far-torch")?.contains("loop") == true && line(screen, "far-train")?.contains("loop") == true,
                "no host column:\n\(screen)")
        try tag(tui, "far-torch")
        try tag(tui, "far-train")
        _ = try tui.waitFor("2 tagged")
        try tui.send(":")
        try tui.type("lr 1e-4")
        try tui.send("Enter")
        _ = try tui.waitFor("lr 1e-4 → 2 runs: 2 ✓ 0 ✗", timeout: 60)
        RemoteEndToEndTests().expectLR(torch.log, "lr 1e-4", 1e-4)
        #expect(train.applied("lr 1e-4"), "the lrtop run's log has no 'lr 1e-4'")
        // enter: the run's dashboard, reached over ssh (its header says so), its log copied; esc comes back.
        try onRow(tui, "far-torch") {
            try tui.send("Enter")
            _ = try tui.waitFor("via loop · socket forwarded", timeout: 60)
            try tui.send("Escape")
            _ = try tui.waitFor("lrtop runs ·", timeout: 30)
        }
        // The table's own links outlived the dashboard's: both runs still answer.
        try tui.send(":")
        try tui.type("lr 3e-4")
        try tui.send("Enter")
        _ = try tui.waitFor("lr 3e-4 → 2 runs: 2 ✓ 0 ✗", timeout: 60)
        #expect(train.applied("lr 3e-4"), "the lrtop run's log has no 'lr 3e-4'")
        // q: nothing of the links is left (no master, no forward, no relay).
        try tui.send("q")
        _ = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [torch.log, train.log]) == [])
        #expect(torch.process.isRunning && train.process.isRunning, "a run stopped when the table quit")

        // `attach loop:NAME` steers the headless lrtop run: the LR reaches its optimizer, its log says so.
        let attach = try tmux(world, "attach loop:far-train", in: dir)
        defer { attach.close() }
        _ = try attach.waitFor("via loop · socket forwarded", timeout: 60)
        try attach.command("lr 2e-4")
        _ = try attach.waitFor("✓ lr 2e-4", timeout: 60)
        #expect(train.applied("lr 2e-4"), "the lrtop run's log has no 'lr 2e-4'")
        try attach.send("q")
        _ = try attach.waitFor("LRTOP_EXITED=0", timeout: 30)

        // `attach loop:` with several live runs there: the runs table of that host, not a prompt.
        let whole = try tmux(world, "attach loop:", in: dir)
        defer { whole.close() }
        _ = try whole.waitFor("lrtop runs ·", timeout: 60)
        _ = try whole.waitFor("far-train", timeout: 60)
        try whole.send("q")
        _ = try whole.waitFor("LRTOP_EXITED=0", timeout: 30)

        // No HOST: the hosts of ~/.config/lrtop/hosts, beside this machine's runs.
        try FileManager.default.createDirectory(atPath: world.localConfig + "/lrtop", withIntermediateDirectories: true)
        try "loop  # the GPU node\n".write(toFile: world.localConfig + "/lrtop/hosts", atomically: true, encoding: .utf8)
        let configured = try tmux(world, "runs", in: dir)
        defer { configured.close() }
        screen = try configured.waitFor("far-torch", timeout: 60)
        #expect(line(screen, "far-torch")?.contains("loop") == true, "\(screen)")
        try configured.send("q")
        _ = try configured.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [torch.log, train.log]) == [])
    }

    /// A host ssh could take for an option is refused before anything runs.
    @Test func aHostThatIsNoHostNameIsRefusedInOneLine() throws {
        for host in ["-oProxyCommand=x", "not a host"] {
            let out = try lrtop(["runs", "--", host], timeout: 30)
            #expect(out.status != 0)
            #expect(out.stderr.contains("'\(host)' is not a host name"), "\(out.stderr)")
        }
    }

    /// A registry on a shared home holds an entry of another host (here: the sshd's alias, in front of a run
    /// served "there"): `ls` and `runs` with no host reach it over ssh to that host, unasked.
    @Test func anEntryOfAnotherHostOnASharedHomeIsReachedOverSSHUnasked() throws {
        let world = try SSHWorld()
        defer { world.close() }
        let dir = try TempDir("lrtop-shared-home")
        defer { dir.cleanup() }
        let torch = try TorchRun(dir, name: "node-run", environment: world.remoteEnvironment)
        defer { torch.killHard() }
        #expect(torch.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(torch.output)")
        let header = try #require(try readLog(torch.log).first)
        let socket = try #require(header["socket"] as? String)
        // The viewer's registry (the shared home): the entry the node "loop" wrote of its run.
        let shared = dir.path("shared-state")
        let registry = shared + "/lrtop/runs"
        try FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: shared + "/lrtop")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: shared)
        let pid = torch.process.processIdentifier
        func writeEntry() throws {
            let entry = #"{"registry":1,"host":"loop","pid":\#(pid),"socket":"\#(socket)","log":"\#(torch.log)","run_dir":"\#(dir.path("runs/node-run"))","name":"node-run","kind":"plain","world_size":1,"rank":0,"start":"2026-12-07T03:00:00Z","heartbeat":\#(Date().timeIntervalSince1970)}"#
            let file = registry + "/loop-\(pid)-0a0b0c0d.json"
            try entry.write(toFile: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
        try writeEntry()
        // A node of the shared home that ssh cannot reach (here: a port nobody listens on): a warning, and a row
        // saying why in the table; the listing of the others is whole.
        let gone = #"{"registry":1,"host":"closed","pid":4242,"socket":"/run/user/1/lrtop-1/4242-aaaaaaaa.sock","log":"/abs/x/run.jsonl","name":"x","kind":"plain","world_size":1,"rank":0,"heartbeat":\#(Date().timeIntervalSince1970 + 3600)}"#
        try gone.write(toFile: registry + "/closed-4242-aaaaaaaa.json", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: registry + "/closed-4242-aaaaaaaa.json")
        let env = world.lrtopEnvironment.merging(["XDG_STATE_HOME": shared]) { $1 }

        let ls = try lrtop(["ls", "--json"], timeout: 90, environment: env)
        #expect(ls.status == 0, "\(ls.stderr)")
        let rows = ls.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let row = rows.first { $0["name"] as? String == "node-run" }
        #expect(row?["host"] as? String == "loop" && row?["socket"] as? String == socket, "\(ls.stdout)\n\(ls.stderr)")
        #expect(row?["step"] as? Int ?? 0 > 0, "no status came over ssh: \(String(describing: row))")
        #expect(ls.stderr.contains("lrtop: warning: ") && ls.stderr.contains("closed"), "\(ls.stderr)")

        try writeEntry()
        let tui = try tmux(world, "runs", in: dir, environment: env)
        defer { tui.close() }
        _ = try tui.waitFor("node-run", timeout: 60)
        let screen = try tui.waitFor("closed:", timeout: 60)
        #expect(line(screen, "node-run")?.contains("loop") == true, "\(screen)")
        #expect(line(screen, "closed:")?.contains("unreachable") == true, "\(screen)")
        try tui.send("q")
        _ = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [torch.log]) == [])
    }

    /// `lrtop runs --slurm` under a real one-node Slurm whose node is reached over the loopback sshd: the sbatch'd
    /// plain loop's row has its job id, partition, state and time left, and is steered from the table; a job
    /// waiting in the queue is a row without metrics.
    @Test func runsSlurmShowsTheJobBesideItsRunAndAPendingJob() throws {
        if let why = SlurmCluster.missing { try Test.cancel(Comment(rawValue: why)) }
        let world = try SSHWorld()
        defer { world.close() }
        let slurm = try SlurmCluster(node: world.nodeName)
        defer { slurm.stop() }
        do { try slurm.start() } catch { try Test.cancel(Comment(rawValue: "Slurm cannot start here: \(error)")) }
        let dir = try TempDir("lrtop-slurm-runs")
        defer { dir.cleanup() }
        let (job, log) = try slurm.submitPlainLoop(name: "slurm-table", in: dir.url.path, remote: world.remoteEnvironment, timeout: slow)
        defer { slurm.cancel(job) }
        #expect(((try? readLog(log)).map { records($0, type: "step").count } ?? 0) >= 5, "the job's run did not start")
        let later = try slurm.sbatch("#!/bin/sh\nsleep 600\n", in: dir.url.path, environment: [:], extra: ["--begin=now+3600"])
        defer { slurm.cancel(later) }
        // squeue names this machine as the job's node, so the viewer counts as being on it: it sees the node's
        // socket and registry folders (the job's run registered there with its job id).
        let env = world.lrtopEnvironment.merging(slurm.environment) { $1 }.merging(world.remoteEnvironment) { $1 }

        let tui = try tmux(world, "runs --slurm", in: dir, environment: env)
        defer { tui.close() }
        _ = try tui.waitFor("slurm-table", timeout: 90)
        // squeue's first answer may come after the run's first status.
        var screen = try tui.waitFor("PENDING", timeout: 60)
        #expect(try tui.waitUntil(timeout: 30) { self.line($0, "slurm-table")?.contains("RUNNING") == true }, "\((try? tui.screen()) ?? "")")
        screen = try tui.screen()
        let run = try #require(line(screen, "slurm-table"), "\(screen)")
        #expect(run.contains(" \(job) ") && run.contains("RUNNING"), "the run's row has no job:\n\(screen)")
        let pending = try #require(screen.split(separator: "\n").first { $0.contains("PENDING") }.map(String.init), "\(screen)")
        #expect(pending.contains(" \(later) ") && pending.contains("pending: BeginTime") && pending.contains("—"),
                "the pending job's row:\n\(screen)")
        // A pending job has no run: S and : say so in its row, nothing waits.
        try onRow(tui, "job.sh") {
            try tui.send("S")
            _ = try tui.waitFor("has no lrtop run yet", timeout: 10)
            try tui.send("Escape")
            try tui.send(":")
            try tui.type("lr 1e-4")
            try tui.send("Enter")
            _ = try tui.waitFor("no lrtop run to steer yet", timeout: 10)
        }
        try tag(tui, "slurm-table")
        try tui.send(":")
        try tui.type("lr 1e-4")
        try tui.send("Enter")
        _ = try tui.waitFor("✓", timeout: 60)
        RemoteEndToEndTests().expectLR(log, "lr 1e-4", 1e-4)
        try tui.send("q")
        _ = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [log]) == [])
    }
}
