import Foundation
import Glibc

/// A one-node Slurm cluster on this machine for the tests, started from scratch: its own munge key and munged, a
/// generated slurm.conf (the node is this host, its daemons on free ports, no cgroups or accounting), slurmctld and
/// slurmd in the foreground. `environment` points Slurm's commands (squeue, sbatch, scontrol) at it. `start` throws
/// with what the daemons said when it cannot start: the test then skips, saying why.
final class SlurmCluster {
    let dir: String
    let node: String
    private var pids: [pid_t] = []

    static let missing: String? = {
        let tools = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/squeue", "/usr/bin/sbatch"]
        let absent = tools.filter { !FileManager.default.isExecutableFile(atPath: $0) }
        if !absent.isEmpty { return "needs Debian's slurm-wlm and munge (.ci/install installs them): no \(absent.joined(separator: ", "))" }
        if getuid() != 0 { return "slurmd runs jobs as their user and must itself run as root (CI runs as root)" }
        return nil
    }()

    var environment: [String: String] { ["SLURM_CONF": dir + "/slurm.conf"] }

    init(node: String) throws {
        self.node = node
        dir = "/tmp/lrslurm-\(UUID().uuidString.prefix(6))"
        for sub in ["", "/munge", "/state", "/spool", "/log"] {
            try FileManager.default.createDirectory(atPath: dir + sub, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        // munged wants its socket's folder reachable by everyone (jobs' users ask it for credentials).
        chmod(dir, 0o755)
        chmod(dir + "/munge", 0o755)
        let key = (0..<1024).map { _ in UInt8.random(in: 0...255) }
        FileManager.default.createFile(atPath: dir + "/munge/munge.key", contents: Data(key), attributes: [.posixPermissions: 0o600])
    }

    func start() throws {
        let munge = dir + "/munge"
        pids.append(try spawnInBackground(["/usr/sbin/munged", "-F", "--force", "--socket=\(munge)/socket",
                                           "--key-file=\(munge)/munge.key", "--pid-file=\(munge)/pid",
                                           "--log-file=\(dir)/log/munged.log", "--seed-file=\(munge)/seed"],
                                          output: dir + "/log/munged.out"))
        try waitFor("munged's socket", timeout: 10) { FileManager.default.fileExists(atPath: munge + "/socket") }
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let ctld = try SSHWorld.freePort(), slurmd = try SSHWorld.freePort()
        try """
        ClusterName=lrtoptest
        SlurmctldHost=\(node)(127.0.0.1)
        SlurmctldPort=\(ctld)
        SlurmdPort=\(slurmd)
        AuthType=auth/munge
        CredType=cred/munge
        AuthInfo=socket=\(munge)/socket
        SlurmUser=root
        SlurmdUser=root
        StateSaveLocation=\(dir)/state
        SlurmdSpoolDir=\(dir)/spool
        SlurmctldPidFile=\(dir)/slurmctld.pid
        SlurmdPidFile=\(dir)/slurmd.pid
        SlurmctldLogFile=\(dir)/log/slurmctld.log
        SlurmdLogFile=\(dir)/log/slurmd.log
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_Core
        MpiDefault=none
        ReturnToService=2
        MailProg=/bin/true
        NodeName=\(node) NodeAddr=127.0.0.1 CPUs=\(cpus) RealMemory=1000 State=UNKNOWN
        PartitionName=debug Nodes=\(node) Default=YES MaxTime=INFINITE State=UP

        """.write(toFile: dir + "/slurm.conf", atomically: true, encoding: .utf8)
        let conf = dir + "/slurm.conf"
        pids.append(try spawnInBackground(["/usr/sbin/slurmctld", "-D", "-f", conf], output: dir + "/log/slurmctld.out",
                                          environment: environment))
        pids.append(try spawnInBackground(["/usr/sbin/slurmd", "-D", "-f", conf], output: dir + "/log/slurmd.out",
                                          environment: environment))
        try waitFor("the node to be idle in sinfo", timeout: 30) {
            let out = (try? runCleanly(["/usr/bin/env", "SLURM_CONF=\(conf)", "sinfo", "-h", "-o", "%T"])) ?? ""
            return out.contains("idle")
        }
    }

    /// Submits a batch script; returns the job id.
    func sbatch(_ script: String, in directory: String, environment: [String: String], extra: [String] = []) throws -> String {
        let file = directory + "/job.sh"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        let exports = environment.merging(self.environment) { $1 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let out = try runCleanly(["/usr/bin/env"] + exports + ["sbatch", "--parsable", "--chdir=\(directory)",
                                                              "--output=\(directory)/job.out"] + extra + [file])
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw SSHWorldError("sbatch gave no job id: '\(out)'") }
        return id
    }

    /// Submits python/examples/plain_loop.py (this checkout's bridge) as a batch job whose run lives "there" (the
    /// remote's socket and state folders), and waits for its first steps; its log is DIR/runs/NAME/run.jsonl.
    func submitPlainLoop(name: String, in directory: String, remote: [String: String], timeout: TimeInterval) throws
        -> (job: String, log: String) {
        let script = "#!/bin/sh\nexec \(venvPython!) \(packageRoot.path)/python/examples/plain_loop.py --steps 100000 --step-delay 0.05 --eval-every 50 --name \(name) --log-dir runs\n"
        let job = try sbatch(script, in: directory, environment: remote.merging([
            "PYTHONPATH": packageRoot.appendingPathComponent("python").path, "OMP_NUM_THREADS": "1"]) { $1 })
        let log = directory + "/runs/\(name)/run.jsonl"
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, ((try? readLog(log)).map { records($0, type: "step").count } ?? 0) < 5 {
            Thread.sleep(forTimeInterval: 0.3)
        }
        return (job, log)
    }

    func squeueState(_ job: String) -> String {
        ((try? runCleanly(["/usr/bin/env", "SLURM_CONF=\(dir)/slurm.conf", "squeue", "-h", "-j", job, "-o", "%T"])) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Cancels a job and waits (up to 15 s) for it to leave the queue.
    func cancel(_ job: String) {
        _ = try? runCleanly(["/usr/bin/env", "SLURM_CONF=\(dir)/slurm.conf", "scancel", job])
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline && !squeueState(job).isEmpty { usleep(200_000) }
    }

    /// What the daemons logged, for a skip or a failure's message.
    var logs: String {
        ["munged.out", "munged.log", "slurmctld.out", "slurmctld.log", "slurmd.out", "slurmd.log"].compactMap { name in
            guard let text = try? String(contentsOfFile: dir + "/log/" + name, encoding: .utf8), !text.isEmpty else { return nil }
            let lines = text.split(separator: "\n").filter { $0.contains("error") || $0.contains("fatal") }.suffix(4)
            return lines.isEmpty ? nil : name + ": " + lines.joined(separator: " | ")
        }.joined(separator: "; ")
    }

    func stop() {
        // A job's step daemon outlives slurmd: those of this cluster (SLURM_CONF in their environment) go too.
        for pid in SSHWorld.processes(mentioning: "slurmstepd") {
            let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()
            if String(decoding: env, as: UTF8.self).contains("SLURM_CONF=\(dir)/") { kill(pid, SIGKILL) }
        }
        for pid in pids.reversed() { kill(pid, SIGTERM) }
        for pid in pids.reversed() {
            var status: Int32 = 0
            let deadline = Date().addingTimeInterval(10)
            while waitpid(pid, &status, WNOHANG) == 0 && Date() < deadline { usleep(50_000) }
            if waitpid(pid, &status, WNOHANG) == 0 { kill(pid, SIGKILL); waitpid(pid, &status, 0) }
        }
        pids = []
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func waitFor(_ what: String, timeout: TimeInterval, _ ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ready() { return }
            usleep(100_000)
        }
        throw SSHWorldError("Slurm did not start (no \(what) after \(Int(timeout)) s): \(logs)")
    }
}
