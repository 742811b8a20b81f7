import Foundation
import Glibc
import Testing

/// `lrtop ls`, `attach` and `replay` of runs on another host, over a real OpenSSH server on loopback (SSHWorld), with
/// real PyTorch loops started "there": listing, steering (`:lr 1e-4` reaches the optimizer: the run's log says so),
/// the relay where the server refuses to forward a socket, a reconnection after the master connection is killed and
/// the server is down for a while, the failures each in one line, and nothing left behind after `q`.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"),
       .enabled(if: sshdUnavailable == nil, "\(sshdUnavailable ?? "")"),
       .enabled(if: venvPython != nil, "no Python venv at ${LRTOP_VENV:-~/.cache/lrtop/venv}: run .ci/install to create it"))
struct RemoteEndToEndTests {
    typealias TorchRun = AttachEndToEndTests.TorchRun
    let slow: TimeInterval = 180

    func tmux(_ world: SSHWorld, _ command: String, in dir: TempDir) throws -> TmuxSession {
        try TmuxSession(command: world.envPrefix(world.lrtopEnvironment) + lrtopBinary.path + " " + command,
                        width: 130, height: 40, directory: dir.url)
    }

    /// The first step record after the last event for `text`, once both are in the run's log.
    func stepAfter(_ path: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let log = try? readLog(path),
               let i = log.lastIndex(where: { $0["type"] as? String == "event" && $0["text"] as? String == text }),
               let step = log[(i + 1)...].first(where: { $0["type"] as? String == "step" }) {
                return step
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("no '\(text)' event followed by a step in \(path)", sourceLocation: sourceLocation)
        return nil
    }

    func expectLR(_ log: String, _ text: String, _ lr: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        let lrs = stepAfter(log, text, sourceLocation: sourceLocation)?["lrs"] as? [Double] ?? []
        #expect(!lrs.isEmpty && lrs.allSatisfy { abs($0 - lr) <= lr * 1e-9 }, "LRs after '\(text)': \(lrs)",
                sourceLocation: sourceLocation)
    }

    @Test func listAttachSteerReconnectQuitAndReplayOverSSH() throws {
        let world = try SSHWorld()
        defer { world.close() }
        let dir = try TempDir("lrtop-remote")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, name: "far-run", environment: world.remoteEnvironment)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(run.output)")
        let runDir = dir.path("runs/far-run")

        // `lrtop ls HOST`: the run, found over SSH in the remote's socket folder.
        let ls = try lrtop(["ls", "loop"], timeout: 60, environment: world.lrtopEnvironment)
        #expect(ls.status == 0, "\(ls.stderr)")
        #expect(ls.stdout.contains("far-run") && ls.stdout.contains(String(run.process.processIdentifier)), "\(ls.stdout)")
        #expect(ls.stdout.contains(run.log), "\(ls.stdout)")
        // Failures, one line each, beside the hosts that answer; the exit status says something failed.
        let bad = try lrtop(["ls", "loop", "closed", "noauth"], timeout: 60, environment: world.lrtopEnvironment)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("far-run"))
        let errors = bad.stderr.split(separator: "\n").filter { $0.hasPrefix("lrtop: error: ") }
        #expect(errors.count == 2, "\(bad.stderr)")
        #expect(errors.contains { $0.contains("cannot reach closed: ssh: connect to host 127.0.0.1") }, "\(bad.stderr)")
        #expect(errors.contains { $0.contains("noauth refused the login (") && $0.contains("Permission denied") }, "\(bad.stderr)")
        // The hosts file, when no host is named: this machine and the file's hosts.
        try FileManager.default.createDirectory(atPath: world.localConfig + "/lrtop", withIntermediateDirectories: true)
        try "# my GPU nodes\nloop\n\nnot a host\n".write(toFile: world.localConfig + "/lrtop/hosts", atomically: true, encoding: .utf8)
        let configured = try lrtop(["ls"], timeout: 60, environment: world.lrtopEnvironment)
        #expect(configured.stdout.contains("loop ") && configured.stdout.contains("far-run"), "\(configured.stdout)")
        #expect(configured.stderr.contains("hosts:4: 'not a host' is not a host name"), "\(configured.stderr)")

        // Attach by name, steer, and the LR reaches the optimizer.
        let tui = try tmux(world, "attach loop:far-run", in: dir)
        defer { tui.close() }
        try tui.waitFor("via loop · socket forwarded", timeout: 60)
        try tui.command("lr 1e-4")
        try tui.waitFor("✓ lr 1e-4", timeout: 60)
        expectLR(run.log, "lr 1e-4", 1e-4)

        // The link drops and the server is down for a while: the screen says it reconnects, and it does once the
        // server is back. The run never notices: it kept training throughout.
        let masters = world.masters
        #expect(masters.count == 1, "masters: \(masters)")
        world.stop("loop")
        for pid in masters { kill(pid, SIGKILL) }
        let before = run.lastStep()
        try tui.waitFor("reconnecting to loop", timeout: 30)
        try tui.waitFor("Connection refused)", timeout: 30)
        try world.start("loop", forwarding: true)
        try tui.waitFor("via loop · socket forwarded", timeout: 60)
        #expect(run.lastStep() > before, "the run stopped while the link was down")
        #expect(run.process.isRunning)
        try tui.command("lr 2e-4")
        try tui.waitFor("✓ lr 2e-4", timeout: 60)
        expectLR(run.log, "lr 2e-4", 2e-4)

        // f: the find-lr sweep runs there, and its sub-run's log, copied as it grows, draws the curve here; enter
        // applies the pick and the run goes on.
        try tui.send("f")
        try tui.waitFor("find-lr · subruns/find-lr-", timeout: 60)
        #expect(try tui.waitUntil(timeout: 120) { $0.contains("stopped: loss") || $0.contains("all steps taken") })
        let panel = try tui.screen()
        #expect(panel.contains("V valley"))
        let pick = try #require(panel.components(separatedBy: "enter: lr ").last?.components(separatedBy: " ").first)
        try tui.send("Enter")
        try tui.waitFor("● running", timeout: 60)
        expectLR(run.log, "lr \(pick)", Double(pick) ?? .nan)

        // q: detached, the run goes on, and nothing of the link is left.
        try tui.send("q")
        let screen = try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(screen.contains("the run goes on. Attach again with: lrtop attach loop:\(runDir)"), "\(screen)")
        #expect(world.waitForNoLeftovers(also: [run.log]) == [])
        #expect(run.process.isRunning)

        // Replay over the same kind of connection: the log streamed, no sshfs.
        let summary = try lrtop(["replay", "--summary", "loop:" + runDir], timeout: 120, environment: world.lrtopEnvironment)
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.contains("lrtop run log"), "\(summary.stdout)")
        let replay = try tmux(world, "replay loop:" + runDir, in: dir)
        defer { replay.close() }
        try replay.waitFor("replay", timeout: 60)
        try replay.waitFor("› lr 2e-4", timeout: 10)
        try replay.send("q")
        try replay.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [run.log]) == [])

        // The run ends: attaching says so and offers the replay; with nothing live, the host says that.
        let stopper = try tmux(world, "attach loop:far-run", in: dir)
        defer { stopper.close() }
        try stopper.waitFor("via loop", timeout: 60)
        try stopper.command("stop")
        #expect(run.waitForExit(timeout: 60), "the run did not stop:\n\(run.output)")
        try stopper.waitFor("stopped", timeout: 30)
        try stopper.send("q")
        try stopper.waitFor("LRTOP_EXITED=0", timeout: 30)
        let ended = try tmux(world, "attach loop:" + runDir, in: dir)
        defer { ended.close() }
        let endedScreen = try ended.waitFor("LRTOP_EXITED=1", timeout: 60).replacingOccurrences(of: "\n", with: "")
        #expect(endedScreen.contains("has ended (stopped), so there is nothing to steer: replay it with 'lrtop replay loop:\(runDir)'"),
                "\(endedScreen)")
        // A folder of runs, none live. (Not `loop:` alone: other runs of this user on this machine, in
        // /tmp/lrtop-UID, are live "there" too.)
        let none = try tmux(world, "attach loop:" + dir.path("runs"), in: dir)
        defer { none.close() }
        let noneScreen = try none.waitFor("LRTOP_EXITED=1", timeout: 60).replacingOccurrences(of: "\n", with: "")
        #expect(noneScreen.contains("lrtop: error: the run loop:\(runDir) has ended (stopped)"), "\(noneScreen)")
        #expect(world.waitForNoLeftovers(also: [run.log]) == [])
    }

    @Test func aServerThatRefusesForwardingIsReachedThroughARelay() throws {
        let world = try SSHWorld()
        defer { world.close() }
        let dir = try TempDir("lrtop-relay")
        defer { dir.cleanup() }
        let run = try TorchRun(dir, name: "relayed", environment: world.remoteEnvironment)
        defer { run.killHard() }
        #expect(run.waitForSteps(5, timeout: slow), "the PyTorch run did not start:\n\(run.output)")

        // --via forward where the server refuses: one line, exit 1.
        let refused = try tmux(world, "attach --via forward nofwd:relayed", in: dir)
        defer { refused.close() }
        let refusedScreen = try refused.waitFor("LRTOP_EXITED=1", timeout: 60)
        #expect(refusedScreen.contains("nofwd refused to forward the run's socket"), "\(refusedScreen)")

        // auto: the run's own Python relays, said in the header; steering works, and so does a reconnection.
        let tui = try tmux(world, "attach nofwd:relayed", in: dir)
        defer { tui.close() }
        try tui.waitFor("via nofwd · relay: python", timeout: 60)
        try tui.command("lr 1e-4")
        try tui.waitFor("✓ lr 1e-4", timeout: 60)
        expectLR(run.log, "lr 1e-4", 1e-4)
        for pid in world.masters { kill(pid, SIGKILL) }
        try tui.waitFor("reconnecting to nofwd", timeout: 30)
        try tui.waitFor("via nofwd · relay: python", timeout: 60)
        try tui.command("lr 3e-4")
        try tui.waitFor("✓ lr 3e-4", timeout: 60)
        expectLR(run.log, "lr 3e-4", 3e-4)
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [run.log]) == [])

        // The other relays, where the host has them.
        let tools = [("socat", FileManager.default.isExecutableFile(atPath: "/usr/bin/socat")),
                     ("nc", (try? runCleanly(["/bin/sh", "-c", "nc -h 2>&1 | grep -c -e -U"]))?.hasPrefix("0") == false
                        && FileManager.default.isExecutableFile(atPath: "/usr/bin/nc"))]
        for (tool, present) in tools where present {
            let via = try tmux(world, "attach --via \(tool) nofwd:relayed", in: dir)
            defer { via.close() }
            try via.waitFor("via nofwd · relay: \(tool)", timeout: 60)
            try via.command("lr 5e-4")
            try via.waitFor("✓ lr 5e-4", timeout: 60)
            // Ctrl-C leaves as cleanly as q.
            try via.send("C-c")
            try via.waitFor("LRTOP_EXITED=", timeout: 30)
            #expect(world.waitForNoLeftovers(also: [run.log]) == [], "after --via \(tool) and Ctrl-C")
        }
    }

    /// Without Slurm's tools, `slurm:JOBID` and `ls --slurm` say so in one line.
    @Test func withoutSqueueTheSlurmCommandsSaySo() throws {
        let ls = try lrtop(["ls", "--slurm"], timeout: 30, environment: ["PATH": "/nonexistent"])
        #expect(ls.status == 1)
        #expect(ls.stderr == "lrtop: error: squeue not found: run this on a Slurm login node (or attach to the node itself: lrtop attach NODE:)\n")
    }

    /// A one-node Slurm cluster (SlurmCluster) whose node is reached over the loopback sshd: a plain loop submitted
    /// with sbatch records its job in its log's header, is listed by `lrtop ls --slurm`, and is attached by
    /// `slurm:JOBID` (squeue names the node, the node's survey the run) and steered.
    @Test func aSlurmJobIsAttachedByItsIdAndSteered() throws {
        if let why = SlurmCluster.missing { try Test.cancel(Comment(rawValue: why)) }
        let world = try SSHWorld()
        defer { world.close() }
        let slurm = try SlurmCluster(node: world.nodeName)
        defer { slurm.stop() }
        do { try slurm.start() } catch { try Test.cancel(Comment(rawValue: "Slurm cannot start here: \(error)")) }
        let dir = try TempDir("lrtop-slurm")
        defer { dir.cleanup() }
        let (job, log) = try slurm.submitPlainLoop(name: "slurm-run", in: dir.url.path, remote: world.remoteEnvironment, timeout: slow)
        defer { slurm.cancel(job) }
        let header = try #require(try readLog(log).first, "the job's run did not start: \((try? String(contentsOfFile: dir.path("job.out"), encoding: .utf8)) ?? "")")
        let recorded = header["slurm"] as? [String: Any]
        #expect(recorded?["job_id"] as? String == job && recorded?["proc_id"] as? Int == 0
                && recorded?["node"] as? String == world.nodeName, "header's slurm: \(String(describing: recorded))")
        let env = world.lrtopEnvironment.merging(slurm.environment) { $1 }

        let jobs = try lrtop(["ls", "--slurm"], timeout: 60, environment: env)
        #expect(jobs.status == 0, "\(jobs.stderr)")
        let row = jobs.stdout.split(separator: "\n").first { $0.hasPrefix(job + " ") }
        #expect(row?.contains("RUNNING") == true && row?.contains("slurm-run") == true && row?.contains(world.nodeName) == true,
                "\(jobs.stdout)")

        let tui = try TmuxSession(command: world.envPrefix(env) + lrtopBinary.path + " attach slurm:" + job,
                                  width: 130, height: 40, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("via \(world.nodeName) · socket forwarded", timeout: 60)
        try tui.command("lr 1e-4")
        try tui.waitFor("✓ lr 1e-4", timeout: 60)
        expectLR(log, "lr 1e-4", 1e-4)
        try tui.send("q")
        try tui.waitFor("LRTOP_EXITED=0", timeout: 30)
        #expect(world.waitForNoLeftovers(also: [log]) == [])

        // A job that waits in the queue, and one that is not in it: one line each, exit 1.
        let later = try slurm.sbatch("#!/bin/sh\nsleep 600\n", in: dir.url.path, environment: [:], extra: ["--begin=now+3600"])
        defer { slurm.cancel(later) }
        let pending = try TmuxSession(command: world.envPrefix(env) + lrtopBinary.path + " attach slurm:" + later,
                                      width: 130, height: 40, directory: dir.url)
        defer { pending.close() }
        let pendingScreen = try pending.waitFor("LRTOP_EXITED=1", timeout: 60)
        #expect(pendingScreen.contains("job \(later) is PENDING (BeginTime), not running: attach once it runs"), "\(pendingScreen)")
        let gone = try TmuxSession(command: world.envPrefix(env) + lrtopBinary.path + " attach slurm:999999",
                                   width: 130, height: 40, directory: dir.url)
        defer { gone.close() }
        let goneScreen = try gone.waitFor("LRTOP_EXITED=1", timeout: 60)
        #expect(goneScreen.contains("job 999999 is not in Slurm's queue"), "\(goneScreen)")
    }
}
