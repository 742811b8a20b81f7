import ArgumentParser
import Foundation
import LRBridge
import LRLog
import LRTUI

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the live runs on this machine and on other hosts (over SSH), or of your Slurm jobs.",
        discussion: """
        With hosts: the live lrtop runs of each (their registry entries and bridge sockets, read over SSH by a \
        POSIX shell command: nothing of lrtop's is needed there), side by side; each host's connection stays open \
        for five minutes, so the next ls or attach starts at once. With none: this machine, the hosts of \
        ~/.config/lrtop/hosts (one per line, # comments), and every host whose live entries the registry lists \
        (a shared home: each node's runs reached over ssh to that node, without naming it). --slurm: your jobs from squeue, each with the run of \
        its rank 0. Then: lrtop attach HOST:RUN, or lrtop attach slurm:JOBID.
        """)

    @Argument(help: ArgumentHelp("Hosts as your ssh knows them (aliases of ~/.ssh/config, user@host).", valueName: "HOST"))
    var hosts: [String] = []
    @Flag(help: "Your Slurm jobs (squeue): job id, partition, state, time left, and the run of rank 0.")
    var slurm = false
    @Flag(help: "One JSON object a line per run: name, pid, host, kind, state, step, total_steps, lrs, loss, steps_per_s, eta_s, log, socket (and rank, world_size, slurm when known).")
    var json = false

    func validate() throws {
        if json && slurm { throw ValidationError("--json lists runs; --slurm lists jobs: choose one") }
    }

    /// One host's answer.
    struct Listing {
        var label: String
        var survey: RemoteSurvey?
        var error: String?
    }

    func run() throws {
        Interrupts.install()
        defer { RemoteCleanup.shared.runAll() }
        if slurm { return try listJobs() }
        var failed = false
        var names = hosts
        var rows: [LsRow] = []
        var empty: [String] = []
        let local = names.isEmpty
        if local {
            let (listed, warnings) = Self.configuredHosts()
            for w in warnings { printErr("lrtop: warning: \(w)") }
            names = listed
        }
        if json { return try listJSON(local: local, hosts: names) }
        if local {
            // This machine: every run's own socket, asked for its status (as `lrtop runs` shows it).
            let fleet = Fleet()
            fleet.start()
            Self.settle(fleet, timeout: 3)
            // (Hosts the registry lists are followed by the fleet; those of the hosts file are surveyed below.)
            let found = fleet.snapshot().filter { !$0.connection.isEnded && !names.contains($0.id.host) }
            for note in fleet.notes() { printErr("lrtop: \(note)") }
            let looked = fleet.lastLook?.whereLooked ?? "looked in the registry \(LocalRegistry.folder())"
            fleet.close()
            rows += found.flatMap { [LsRow(row: $0)] + $0.ranks.map { LsRow(row: $0) } }
            if found.isEmpty { empty.append("this machine (\(looked))") }
        }
        for l in Self.survey(names) {
            if let e = l.error { printErr("lrtop: error: \(e)"); failed = true; continue }
            guard let s = l.survey else { continue }
            if s.runs.isEmpty { empty.append(l.label) }
            rows += s.runs.map { LsRow(host: l.label, run: $0, now: s.now) }
        }
        if rows.isEmpty {
            if !empty.isEmpty || !failed { printOut("no live runs on " + (empty.isEmpty ? ["this machine"] : empty).joined(separator: ", ")) }
        } else {
            printOut(Self.table(LsRow.header, rows.map(\.cells)))
            for host in empty { printOut("\(host): no live runs") }
        }
        if failed { throw ExitCode(1) }
    }

    /// `--json`: every run followed through the fleet (other hosts' runs over ssh, as `lrtop runs HOST` follows
    /// them), so each object has the run's status, not only what its registry entry and log say.
    func listJSON(local: Bool, hosts: [String]) throws {
        var options = Fleet.Options()
        options.local = local
        options.hosts = hosts
        let fleet = Fleet(options: options)
        fleet.start()
        Self.settle(fleet, timeout: hosts.isEmpty ? 3 : 30)
        let rows = fleet.snapshot().filter { !$0.connection.isEnded }
        let problems = fleet.hostProblemsNow
        let notes = fleet.notes().filter { note in !problems.keys.contains { note.hasPrefix($0 + ": ") } }
        fleet.close()
        for note in notes { printErr("lrtop: \(note)") }
        for row in rows.flatMap({ [$0] + $0.ranks }) { printOut(LsRow(row: row).json()) }
        // A host the registry named (not one asked for, nor the hosts file's) that cannot be reached is a warning:
        // the listing asked for is whole.
        let asked = problems.keys.filter { hosts.contains($0) }
        for host in problems.keys.sorted() {
            printErr("lrtop: \(asked.contains(host) ? "error" : "warning"): \(problems[host]!)")
        }
        if !asked.isEmpty { throw ExitCode(1) }
    }

    /// `lrtop ls --slurm`: squeue's jobs, and for each running one the run of its rank 0 (its node surveyed over SSH).
    func listJobs() throws {
        let jobs: [Slurm.Job]
        do { jobs = try Slurm.jobs() } catch { try fail(error.description) }
        guard !jobs.isEmpty else {
            printOut("no Slurm jobs of yours in the queue")
            return
        }
        var node: [String: String] = [:]
        var problems: [String] = []
        for job in jobs where job.state == "RUNNING" {
            do { node[job.id] = try RemoteAttach.rank0Node(of: job) } catch { problems.append(error.description) }
        }
        let nodes = Array(Set(node.values)).sorted()
        let listings = Dictionary(uniqueKeysWithValues: zip(nodes, Self.survey(nodes)))
        var rows: [[String]] = []
        for job in jobs {
            let host = node[job.id]
            let listing = host.flatMap { listings[$0] }
            if let e = listing?.error { problems.append(e) }
            let runs = listing?.survey?.runs.filter { $0.slurmJob == job.id && ($0.rank ?? 0) == 0 } ?? []
            let base = [job.id, job.partition, job.state, job.timeLeft, host ?? (job.reason == "None" ? "-" : "(\(job.reason))")]
            if runs.isEmpty {
                rows.append(base + [job.state == "RUNNING" ? "(no lrtop run)" : "-", "-", "-"])
            }
            for run in runs {
                rows.append(base + [run.name, run.step.map(Format.grouped) ?? "-", run.loss.map { Self.number($0) } ?? "-"])
            }
        }
        printOut(Self.table(["JOBID", "PARTITION", "STATE", "TIME LEFT", "NODE", "RUN", "STEP", "LOSS"], rows))
        for p in Set(problems).sorted() { printErr("lrtop: error: \(p)") }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// Waits for the fleet's first full look; longer once it follows other hosts (the registry on a shared home
    /// lists runs of other nodes, reached over ssh, which takes longer than this machine's sockets).
    static func settle(_ fleet: Fleet, timeout: TimeInterval) {
        fleet.settle(timeout: timeout)
        if !fleet.followedHosts.isEmpty { fleet.settle(timeout: 30) }
    }

    /// Every host surveyed at once, each through its master connection (left open `SSHMaster.persistSeconds`).
    static func survey(_ hosts: [String]) -> [Listing] {
        let results = Results(count: hosts.count)
        DispatchQueue.concurrentPerform(iterations: hosts.count) { i in
            let host = hosts[i]
            do {
                let master = try SSHMaster(host: host)
                defer { master.close(exitIfLast: false) }
                try master.connect(cancelled: { Interrupts.pending != 0 })
                results.set(i, Listing(label: host, survey: try RemoteSurvey.of(master, cancelled: { Interrupts.pending != 0 })))
            } catch {
                results.set(i, Listing(label: host, error: "\(error)"))
            }
        }
        return results.all
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Listing?]
        init(count: Int) { items = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ l: Listing) { lock.withLock { items[i] = l } }
        var all: [Listing] { lock.withLock { items.compactMap { $0 } } }
    }

    /// The hosts of `${XDG_CONFIG_HOME:-~/.config}/lrtop/hosts`, and a warning for each line that is not one.
    static func configuredHosts() -> ([String], [String]) {
        let env = ProcessInfo.processInfo.environment
        let config = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.config")
        let path = config + "/lrtop/hosts"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ([], []) }
        var hosts: [String] = [], warnings: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            do { try SSHMaster.validate(host: line); if !hosts.contains(line) { hosts.append(line) } }
            catch { warnings.append("\(path):\(n + 1): \(error.description); skipped") }
        }
        return (hosts, warnings)
    }

    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "\(x)" }

    static func age(_ t: Double?, now: Double) -> String {
        guard let t, now > 0 else { return "-" }
        return Format.duration(max(0, now - t)) + " ago"
    }

    /// Columns padded to their widest cell, two spaces apart; the last is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { c, cell in c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
