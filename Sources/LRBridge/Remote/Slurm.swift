import Foundation
import Glibc

/// The user's Slurm jobs, from Slurm's own commands on this machine (a login node): `squeue` for the jobs and their
/// nodes, `scontrol show hostnames` to expand a node list. Their output is read as untrusted text.
public enum Slurm {
    public struct Job: Equatable, Sendable {
        public var id: String
        public var partition: String
        /// RUNNING, PENDING, COMPLETING ...
        public var state: String
        /// squeue's time left (`1:02:03`, `UNLIMITED`, `INVALID`).
        public var timeLeft: String
        /// The compressed node list (`gpu[1-3]`), or the pending reason for a job that has none.
        public var nodes: String
        public var reason: String
        public var name: String
    }

    /// squeue's columns, `|`-separated, the job's name last (it may hold anything).
    static let format = "%i|%P|%T|%L|%N|%r|%j"

    /// The jobs of this user.
    public static func jobs() throws(RemoteError) -> [Job] {
        try parse(squeue(["-h", "-u", currentUser(), "-o", format]).text)
    }

    /// One job; throws in one line when it is not in the queue or not running.
    public static func job(_ id: String) throws(RemoteError) -> Job {
        guard RemoteTarget.validJob(id) else {
            throw RemoteError(.slurm, "'\(id)' is not a Slurm job id (slurm:JOBID, e.g. slurm:123456)")
        }
        let r = try squeue(["-h", "-j", id, "-o", format], allowFailure: true)
        guard let job = parse(r.text).first(where: { $0.id == id }) ?? parse(r.text).first else {
            throw RemoteError(.slurm, "job \(id) is not in Slurm's queue (it has finished, or never existed): its runs replay with 'lrtop replay NODE:RUN_DIR'")
        }
        guard job.state == "RUNNING" else {
            let why = job.reason.isEmpty || job.reason == "None" ? "" : " (\(job.reason))"
            throw RemoteError(.slurm, "job \(id) is \(job.state)\(why), not running: attach once it runs (squeue -j \(id))")
        }
        return job
    }

    /// The node names of a node list (`gpu[1-2]` -> gpu1, gpu2), by `scontrol show hostnames`.
    public static func hostnames(_ nodes: String) throws(RemoteError) -> [String] {
        let r = try SSHMaster.run(["scontrol", "show", "hostnames", nodes], timeout: 15)
        let names = r.text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("-") && $0.count < 256 }
        if r.status == 0, !names.isEmpty { return names }
        // A plain list needs no expansion.
        if !nodes.contains("[") { return nodes.split(separator: ",").map(String.init) }
        throw RemoteError(.slurm, "cannot expand the node list '\(nodes)': \(r.errorText.split(whereSeparator: \.isNewline).last ?? "scontrol failed")")
    }

    static func parse(_ text: String) -> [Job] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let f = line.split(separator: "|", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 7, RemoteTarget.validJob(f[0]) else { return nil }
            return Job(id: f[0], partition: f[1], state: f[2], timeLeft: f[3], nodes: f[4], reason: f[5], name: f[6])
        }
    }

    static func squeue(_ arguments: [String], allowFailure: Bool = false) throws(RemoteError) -> Subprocess.Result {
        let r: Subprocess.Result
        do {
            r = try Subprocess.run(["squeue"] + arguments, timeout: 30)
        } catch {
            throw RemoteError(.slurm, "squeue not found: run this on a Slurm login node (or attach to the node itself: lrtop attach NODE:)")
        }
        if r.status != 0 && !(allowFailure && r.errorText.lowercased().contains("invalid job id")) {
            let said = r.errorText.split(whereSeparator: \.isNewline).last.map(String.init) ?? "status \(r.status)"
            throw RemoteError(.slurm, "squeue failed: \(said)")
        }
        return r
    }

    static func currentUser() -> String {
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return String(getuid())
    }
}
