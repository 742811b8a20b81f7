import Foundation
import Glibc
import LRTUI

/// Every run this machine serves, each followed over its own socket: one I/O thread polls (poll(2)) all
/// connections, reads greetings and statuses, sends commands and stacks requests, and rescans the registry and
/// socket folders about once a second. A viewer reads `snapshot()` (a copy, never blocks on a run) as often as it
/// draws; answers to `send` and `stacks` land in the rows. Spec #25 §5; README "Steer your PyTorch run", docs/remote.md.
public final class Fleet: @unchecked Sendable {
    public struct Options: Sendable {
        /// How often the registry folder and socket folders are looked at again.
        public var rescanInterval: TimeInterval = 1
        /// How long an ended run stays in the list, dimmed, with its reason.
        public var keepEnded: TimeInterval = 600
        /// How long a stacks request waits for a rank's answer.
        public var stacksTimeout: TimeInterval = 5
        /// How long an unreachable run waits before the next connection attempt.
        public var retryInterval: TimeInterval = 5
        public var registryFolder = LocalRegistry.folder()
        public var host = LocalRegistry.hostname()
        public var environment = ProcessInfo.processInfo.environment
        /// Where socket folders are looked for; nil: $XDG_RUNTIME_DIR, /run/user/UID, $TMPDIR and /tmp.
        public var socketBases: [String]?
        /// Other hosts whose runs to follow too, over ssh (as `lrtop attach HOST:` reaches them; issue #26).
        public var hosts: [String] = []
        /// Follow this machine's runs (registry and socket folders); off for a table of other hosts only.
        public var local = true
        /// Follow this user's Slurm jobs too: squeue's jobs (`Fleet.slurmJobs()`, each row's `job`), and the runs
        /// on the node of each running job's rank 0.
        public var slurm = false
        /// Follow, over ssh, the hosts whose fresh entries the registry lists (a shared home holds every node's
        /// entries): `lrtop runs` on a login node reaches each node's runs without being told its name (#26).
        public var followRegistryHosts = true
        /// Leave each host's master connection open its persist time after `close` (`lrtop ls`: the next command
        /// starts at once); off, `close` ends them (a table's `q` leaves no ssh behind).
        public var keepConnections = true
        public init() {}
    }

    public let options: Options

    // Shared with the viewer's thread, under `lock`.
    private let lock = NSLock()
    private var published: [FleetRow] = []
    private var publishedNotes: [String] = []
    private var publishedLook: LocalDiscovery.Result?
    private var requests: [Request] = []
    private var changes = 0
    private var scans = 0
    private var stopping = false
    private var thread: Thread?
    private var finished = false
    private let wake: (read: Int32, write: Int32)

    // The I/O thread's own state.
    private var links: [FleetRowID: Link] = [:]
    private var stackRequests: [FleetRowID: StackRequest] = [:]
    private var lastScan = Date.distantPast
    private var registryStamp: timespec?
    /// Something in a row changed this round (a message, a state), so the snapshot is published again.
    private var dirty = false
    private var looked = false
    /// Hosts (and "squeue") whose look came in this round: told to `settle` once their rows are published.
    private var answered = Set<String>()

    private enum Request {
        case send(String, [FleetRowID])
        case stacks(FleetRowID)
        case refresh
        case remote(String, RemoteFleetSource.Event)
        case slurm(SlurmFleetSource.Event)
    }
    private var sources: [RemoteFleetSource] = []
    private var slurmSource: SlurmFleetSource?
    /// squeue's jobs as last read, and the node of each running job's rank 0 (I/O thread; published under `lock`).
    private var jobs: [Slurm.Job] = []
    private var publishedJobs: [Slurm.Job] = []
    private var jobNodes: [String: String] = [:]
    /// Hosts whose first survey (or failure) came in, and each host's problem now, under `lock`.
    private var hostsAnswered = Set<String>()
    private var hostProblems: [String: String] = [:]

    /// One socket followed: its row (without grouping) and connection, owned by the I/O thread.
    private final class Link {
        var row: FleetRow
        var connection: BridgeConnection?
        var commands: [Int: String] = [:]
        /// Stacks request id -> the row (a job's rank 0) that asked.
        var stacks: [Int: FleetRowID] = [:]
        var lastAttempt = Date.distantPast
        var discovered = true
        var greeted = false
        /// Undoes the ssh forward or relay of a run on another host, once its connection ended.
        var release: (() -> Void)?
        init(row: FleetRow) { self.row = row }
    }

    private struct StackRequest {
        var started: Date
        var waiting: [FleetRowID: Int]  // link -> its rank
        var got: [FleetRankStacks] = []
    }

    public init(options: Options = Options()) {
        self.options = options
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        } else {
            fds = [-1, -1]
        }
        wake = (fds[0], fds[1])
    }

    deinit {
        close()
        if wake.read >= 0 { Glibc.close(wake.read); Glibc.close(wake.write) }
    }

    /// Starts the I/O thread (once); the first look happens at once.
    public func start() {
        lock.withLock {
            guard thread == nil else { return }
            let t = Thread { [weak self] in self?.loop() }
            t.name = "lrtop-fleet"
            thread = t
            t.start()
            for host in options.hosts { addSource(host) }
            if options.slurm {
                let source = SlurmFleetSource(deliver: { [weak self] event in self?.enqueue(.slurm(event)) })
                slurmSource = source
                source.start()
            }
        }
    }

    /// Stops the I/O thread and closes every connection (returns once it has).
    public func close() {
        let running = lock.withLock { () -> Bool in
            stopping = true
            return thread != nil && !finished
        }
        let hosts = lock.withLock({ sources })
        for source in hosts { source.stop() }
        lock.withLock { slurmSource }?.stop()
        if running {
            poke()
            while !lock.withLock({ finished }) { usleep(2000) }
        }
        // Each source lets go of its master itself (a survey under way ends at its next cancellation check).
        let deadline = Date().addingTimeInterval(10)
        while hosts.contains(where: { !$0.isDone }) && Date() < deadline { usleep(5000) }
    }

    /// The runs as they stand: live ones first (newest first), then the ended ones kept `keepEnded`. A DDP job is
    /// one row (rank 0's) with its other ranks in `ranks`. Never blocks on a run.
    public func snapshot() -> [FleetRow] { lock.withLock { published } }

    /// Grows each time the snapshot changes (a viewer redraws when it moved).
    public var generation: Int { lock.withLock { changes } }

    /// How many times the fleet has looked for runs (0 before the first look finished).
    public var lookCount: Int { lock.withLock { scans } }

    /// Lines worth showing once (the registry refused, other hosts' entries seen on a shared home).
    public func notes() -> [String] {
        lock.withLock { publishedNotes + hostProblems.keys.sorted().map { "\($0): \(hostProblems[$0]!)" } }
    }

    /// The hosts of `options.hosts` that cannot be surveyed now, with why.
    public var hostProblemsNow: [String: String] { lock.withLock { hostProblems } }

    /// Where the last look looked, for a "no live runs" line.
    public var lastLook: LocalDiscovery.Result? { lock.withLock { publishedLook } }

    /// Sends one command line of the steering language to each row (a DDP job: its rank 0); each row's `answer`
    /// is pending until the run answers (applied at its next step, or refused).
    public func send(_ text: String, to rows: [FleetRowID]) { enqueue(.send(text, rows)) }

    /// Asks every rank of the row's run for its threads; the row's `stacks` is pending until all answered.
    public func stacks(of row: FleetRowID) { enqueue(.stacks(row)) }

    /// Looks for runs now (instead of within a second), and retries unreachable ones.
    public func refresh() { enqueue(.refresh) }

    /// Waits (the caller's thread; not a UI's) until the first look is done and every run found has sent a
    /// status, ended or failed, or `timeout` passed. `lrtop ls` uses it.
    public func settle(timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let (looked, rows, hosts) = lock.withLock { (scans, published, hostsAnswered) }
            let sourcesNow = lock.withLock { sources.map(\.host) + (options.slurm ? ["squeue"] : []) }
            if looked > 0 && hosts.isSuperset(of: sourcesNow) && !rows.contains(where: Self.unsettled) { return }
            usleep(10_000)
        }
    }

    /// Starts following `host`'s runs over ssh (under `lock`, or before the I/O thread runs).
    private func addSource(_ host: String) {
        let source = RemoteFleetSource(host: host, keepConnection: options.keepConnections, following: { [weak self] in self?.followed(on: host) ?? [] },
                                       deliver: { [weak self] event in self?.enqueue(.remote(host, event)) })
        sources.append(source)
        source.start()
    }

    /// The other hosts followed now: those of `Options.hosts`, the rank-0 nodes of Slurm jobs, and the hosts the
    /// registry lists (a shared home).
    public var followedHosts: [String] { lock.withLock { sources.map(\.host) } }

    /// squeue's jobs as last read (`Options.slurm`), pending ones included: a table shows them beside the runs.
    public func slurmJobs() -> [Slurm.Job] { lock.withLock { publishedJobs } }

    /// The sockets of `host` followed now (live or connecting), so its source reaches only the others.
    private func followed(on host: String) -> Set<String> {
        var sockets = Set<String>()
        for row in snapshot().flatMap({ [$0] + $0.ranks }) where row.id.host == host {
            if row.connection == .live || row.connection == .connecting { sockets.insert(row.socket) }
        }
        return sockets
    }

    /// A run still to be heard from: connecting, or greeted without a status yet (itself or one of its ranks).
    private static func unsettled(_ row: FleetRow) -> Bool {
        if row.connection == .connecting { return true }
        if row.connection == .live && row.status == nil { return true }
        return row.ranks.contains(where: unsettled)
    }

    private func enqueue(_ r: Request) {
        lock.withLock { requests.append(r) }
        poke()
    }

    private func poke() {
        guard wake.write >= 0 else { return }
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    // MARK: The I/O thread

    private func loop() {
        while !lock.withLock({ stopping }) {
            let now = Date()
            dirty = false
            let pending = lock.withLock { () -> [Request] in defer { requests.removeAll() }; return requests }
            var force = false
            for r in pending { if case .refresh = r { force = true } }
            if force || now.timeIntervalSince(lastScan) >= options.rescanInterval { scan(now: now, force: force) }
            for r in pending { handle(r, now: now) }
            waitForTraffic(timeoutMs: 200)
            let after = Date()
            for link in links.values { pump(link, now: after) }
            expireStacks(now: after)
            let kept = links.filter { _, l in !(l.row.endedAt.map { after.timeIntervalSince($0) > options.keepEnded } ?? false) }
            if kept.count != links.count { links = kept; dirty = true }
            if dirty || !pending.isEmpty { publish() }
            if looked || !answered.isEmpty {
                // Counted once their rows are in the snapshot, so `settle` never sees a look without its runs.
                let (local, hosts) = (looked, answered)
                looked = false
                answered.removeAll()
                lock.withLock { if local { scans += 1 }; hostsAnswered.formUnion(hosts) }
            }
            // At most ten rounds a second: servers push a status every half second each, and with hundreds of runs
            // a round per arrival would cost more than the table shows. A request (a command, stacks) ends the rest.
            let rest = Self.minimumRound - Date().timeIntervalSince(now)
            if rest > 0 { waitForWake(timeoutMs: Int32(rest * 1000)) }
        }
        for link in links.values { link.connection?.close(); link.release?() }
        links.removeAll()
        lock.withLock { finished = true }
    }

    /// The shortest round of the I/O loop.
    static let minimumRound: TimeInterval = 0.1

    private func waitForWake(timeoutMs: Int32) {
        guard lock.withLock({ requests.isEmpty && !stopping }) else { return }
        var fd = pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, timeoutMs)
    }

    private func waitForTraffic(timeoutMs: Int32) {
        var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        for link in links.values {
            guard let c = link.connection, c.state == .connected, c.descriptor >= 0 else { continue }
            fds.append(pollfd(fd: c.descriptor, events: Int16(POLLIN) | (c.wantsToWrite ? Int16(POLLOUT) : 0), revents: 0))
        }
        _ = poll(&fds, nfds_t(fds.count), timeoutMs)
        var sink = [UInt8](repeating: 0, count: 256)
        while wake.read >= 0 && Glibc.read(wake.read, &sink, sink.count) > 0 {}
    }

    /// Looks at the registry and the socket folders, and connects to runs not followed yet.
    private func scan(now: Date, force: Bool) {
        lastScan = now
        dirty = true
        guard options.local else { looked = true; return }
        let look = LocalDiscovery.look(registryFolder: options.registryFolder, host: options.host,
                                       environment: options.environment, socketBases: options.socketBases)
        registryStamp = LocalRegistry.stamp(of: options.registryFolder)
        var found = Set<FleetRowID>()
        for run in look.runs {
            let id = FleetRowID(host: options.host, socket: run.socket)
            found.insert(id)
            let link: Link
            if let known = links[id] {
                link = known
            } else {
                link = Link(row: FleetRow(id: id, name: run.entry?.name ?? "pid \(run.pid)", pid: run.pid, seenAt: now))
                links[id] = link
            }
            link.discovered = true
            if let e = run.entry { Self.take(e, into: &link.row) }
            if link.connection == nil, !link.row.connection.isEnded,
               force || now.timeIntervalSince(link.lastAttempt) >= options.retryInterval {
                connect(link, now: now)
            }
        }
        for (id, link) in links where id.host == options.host && !found.contains(id) {
            link.discovered = false
            // Gone from the registry and the folders without a connection that could say more: its process is gone.
            if link.connection == nil, !link.row.connection.isEnded { end(link, now: now) }
        }
        var notes: [String] = []
        if let refused = look.registry.refused { notes.append(refused) }
        let otherHosts = Set(look.otherHosts.map(\.host)).subtracting([options.host]).sorted()
        if !otherHosts.isEmpty && options.followRegistryHosts {
            // An entry's host names a machine the way the machine names itself: the alias ssh is asked for. A name
            // ssh could take for an option (read from a file) is passed over, as the hosts file's lines are.
            let reachable = otherHosts.filter { (try? SSHMaster.validate(host: $0)) != nil }
            lock.withLock {
                for host in reachable where !sources.contains(where: { $0.host == host }) { addSource(host) }
            }
            let skipped = otherHosts.filter { !reachable.contains($0) }
            if !skipped.isEmpty {
                notes.append("the registry lists runs of hosts whose names ssh cannot take (\(skipped.joined(separator: ", "))): passed over")
            }
        } else if !otherHosts.isEmpty {
            notes.append("the registry lists runs of other hosts (\(otherHosts.joined(separator: ", "))): see them with lrtop ls \(otherHosts.joined(separator: " "))")
        }
        lock.withLock { publishedNotes = notes; publishedLook = look }
        looked = true
    }

    private static func take(_ e: RegistryEntry, into row: inout FleetRow) {
        if let n = e.name { row.name = n }
        row.kind = e.kind ?? row.kind
        row.pid = e.pid
        row.log = e.log ?? row.log
        row.runDir = e.runDir ?? row.runDir
        row.worldSize = e.worldSize ?? row.worldSize
        row.rank = e.rank ?? row.rank
        row.slurm = e.slurm ?? row.slurm
        row.start = e.start ?? row.start
    }

    private func connect(_ link: Link, now: Date) {
        link.lastAttempt = now
        do {
            link.connection = try BridgeConnection(path: link.row.socket)
            link.row.connection = .connecting
        } catch {
            link.connection = nil
            if error.code == ECONNREFUSED || error.code == ENOENT {
                end(link, now: now)
            } else {
                link.row.connection = .unreachable(error.description)
            }
        }
    }

    /// Reads what arrived on one connection.
    private func pump(_ link: Link, now: Date) {
        guard let c = link.connection else { return }
        let messages = c.poll()
        if !messages.isEmpty { dirty = true }
        for message in messages {
            switch message {
            case .hello(let h):
                link.greeted = true
                if !h.run.isEmpty { link.row.name = h.run }
                link.row.log = h.log
                if link.row.runDir == nil { link.row.runDir = (h.log as NSString).deletingLastPathComponent }
                link.row.kind = h.framework ?? link.row.kind
                if let p = h.pid { link.row.pid = p }
                link.row.worldSize = h.worldSize ?? link.row.worldSize
                link.row.rank = h.rank ?? link.row.rank
                if link.row.connection == .connecting { link.row.connection = .live }
            case .status(let s):
                link.row.status = s
                link.row.statusAt = now
                if link.row.connection == .connecting { link.row.connection = .live }
                if let r = s.figures.rank { link.row.rank = r }
            case .ack(let id, let ok, let error):
                guard !ok, let text = link.commands.removeValue(forKey: id) else { continue }
                answer(link, .answered(CommandReply(refused: id, text: text, error: error)))
            case .result(let id, let ok, let step, let message, let error, let answer):
                guard let text = link.commands.removeValue(forKey: id) else { continue }
                let reply = CommandReply(result: id, text: text, ok: ok, step: step, message: message, error: error,
                                         answer: answer, currentStep: link.row.status?.step ?? 0)
                self.answer(link, .answered(reply))
            case .stacks(let id, let rank, let threads):
                guard let asker = link.stacks.removeValue(forKey: id) else { continue }
                took(FleetRankStacks(rank: rank ?? link.row.rank ?? 0, threads: threads), from: link.row.id, for: asker)
            case .error(let text):
                // A server that predates stacks refuses the request as an unknown message type.
                if let (id, asker) = link.stacks.first {
                    link.stacks.removeValue(forKey: id)
                    took(FleetRankStacks(rank: link.row.rank ?? 0, threads: [], error: "the run refused the request: \(text)"),
                         from: link.row.id, for: asker)
                }
            case .record, .gap:
                break
            }
        }
        if case .closed(let reason) = c.state {
            dirty = true
            link.connection = nil
            link.release?()
            link.release = nil
            for (_, asker) in link.stacks {
                took(FleetRankStacks(rank: link.row.rank ?? 0, threads: [], error: reason ?? "the connection closed"),
                     from: link.row.id, for: asker)
            }
            link.stacks.removeAll()
            for (id, text) in link.commands {
                answer(link, .answered(CommandReply(id: id, text: text, outcome: .rejected("the run ended before it applied"))))
            }
            link.commands.removeAll()
            if !link.greeted, let reason, reason != BridgeConnection.closedByPeer {
                // Never greeted: a protocol mismatch or a socket that is not a run's.
                link.row.connection = .unreachable(reason)
            } else {
                end(link, now: now)
            }
        } else if let s = link.row.status, ["finished", "stopped", "failed"].contains(s.state), s.figures.ended != nil {
            link.row.connection = .ended(s.figures.ended!)
            link.row.endedAt = link.row.endedAt ?? now
        }
    }

    /// Marks a run ended, with the best reason known: its last status's `ended`, its log's end record, or that
    /// its process is gone.
    private func end(_ link: Link, now: Date) {
        guard !link.row.connection.isEnded else { return }
        var reason = link.row.status?.figures.ended
        // The log and the process are this machine's only for a run found here.
        if link.row.id.host == options.host {
            if reason == nil, let log = link.row.log { reason = RunFinder.endReason(of: URL(fileURLWithPath: log)) }
            if reason == nil, kill(pid_t(clamping: link.row.pid), 0) != 0 && errno == ESRCH { reason = "process gone" }
        }
        link.row.connection = .ended(reason ?? "the run closed its socket")
        link.row.endedAt = now
        link.connection?.close()
        link.connection = nil
        link.release?()
        link.release = nil
    }

    private func answer(_ link: Link, _ a: FleetAnswer) { link.row.answer = a }

    /// A row for a run another host's survey lists, before its greeting.
    private static func row(of run: RemoteSurvey.Run, on host: String, seenAt: Date) -> FleetRow {
        var row = FleetRow(id: FleetRowID(host: host, socket: run.socket), name: run.name, kind: run.kind, pid: run.pid,
                           seenAt: seenAt)
        row.log = run.log; row.runDir = run.runDir; row.rank = run.rank; row.worldSize = run.worldSize
        row.start = run.start
        row.slurm = run.slurmJob.map { RegistryEntry.Slurm(jobID: $0, node: host) }
        return row
    }

    /// What a remote source found: a run reached (followed from now, as a run found here), a survey, a problem.
    private func take(_ event: RemoteFleetSource.Event, of host: String, now: Date) {
        dirty = true
        switch event {
        case .reached(let run, let connected, let release):
            let id = FleetRowID(host: host, socket: run.socket)
            if let known = links[id], known.connection != nil {
                // Already followed (a survey raced the last connection): keep the one there is.
                Glibc.close(connected.fd)
                release()
                return
            }
            let link = Link(row: Self.row(of: run, on: host, seenAt: links[id]?.row.seenAt ?? now))
            link.connection = BridgeConnection(adopting: connected)
            link.release = release
            links[id] = link
        case .unreachable(let run, let why):
            let id = FleetRowID(host: host, socket: run.socket)
            guard links[id]?.connection == nil else { return }
            let link = links[id] ?? Link(row: Self.row(of: run, on: host, seenAt: now))
            link.row.connection = .unreachable(why)
            links[id] = link
        case .surveyed(let sockets):
            let live = Set(sockets)
            for (id, link) in links where id.host == host && link.connection == nil && !live.contains(id.socket) {
                end(link, now: now)
            }
            answered.insert(host)
        case .problem(let why):
            lock.withLock { hostProblems[host] = why }
            if why != nil { answered.insert(host) }
        }
    }

    private func handle(_ request: Request, now: Date) {
        switch request {
        case .refresh:
            break
        case .remote(let host, let event):
            take(event, of: host, now: now)
        case .slurm(.problem(let why)):
            lock.withLock { hostProblems["squeue"] = why }
            if why != nil { answered.insert("squeue") }
        case .slurm(.jobs(let list, let nodes)):
            dirty = true
            jobs = list
            jobNodes = nodes
            answered.insert("squeue")
            let local = options.host
            lock.withLock {
                publishedJobs = list
                // Each rank-0 node not followed yet (this machine's runs are followed here already).
                for node in Set(nodes.values).sorted() where !sources.contains(where: { $0.host == node }) {
                    if options.local && RemoteSurvey.shortName(node) == local { continue }
                    addSource(node)
                }
            }
        case .send(let text, let ids):
            for id in ids {
                guard let link = links[id] else { continue }
                guard let c = link.connection, let n = c.send(command: text) else {
                    let why: String
                    switch link.row.connection {
                    case .ended(let r): why = "the run has ended (\(r))"
                    case .unreachable(let r): why = r
                    default: why = "not connected to the run yet"
                    }
                    link.row.answer = .notSent(text: text, reason: why)
                    continue
                }
                link.commands[n] = text
                link.row.answer = .pending(text: text)
            }
        case .stacks(let id):
            guard let asker = links[id] else { return }
            var request = StackRequest(started: now, waiting: [:])
            for link in members(of: asker) {
                let rank = link.row.rank ?? 0
                if let c = link.connection, let n = c.requestStacks() {
                    link.stacks[n] = id
                    request.waiting[link.row.id] = rank
                } else {
                    request.got.append(FleetRankStacks(rank: rank, threads: [], error: "not connected to rank \(rank)"))
                }
            }
            stackRequests[id] = request
            asker.row.stacks = request.waiting.isEmpty ? .ready(request.got.sorted { $0.rank < $1.rank }) : .pending
        }
    }

    /// The links of the DDP job `link` belongs to (itself alone for a single process).
    private func members(of link: Link) -> [Link] {
        guard let key = Self.jobKey(link.row) else { return [link] }
        return links.values.filter { Self.jobKey($0.row) == key }
    }

    private func took(_ stacks: FleetRankStacks, from member: FleetRowID, for asker: FleetRowID) {
        guard var request = stackRequests[asker], request.waiting.removeValue(forKey: member) != nil else { return }
        request.got.append(stacks)
        stackRequests[asker] = request
        if request.waiting.isEmpty { finishStacks(asker) }
    }

    private func expireStacks(now: Date) {
        for (asker, request) in stackRequests where now.timeIntervalSince(request.started) > options.stacksTimeout {
            var r = request
            for (member, rank) in r.waiting {
                r.got.append(FleetRankStacks(rank: rank, threads: [], error: "no answer within \(Int(options.stacksTimeout)) s (the server may predate stacks)"))
                links[member]?.stacks = links[member]?.stacks.filter { $0.value != asker } ?? [:]
            }
            r.waiting.removeAll()
            stackRequests[asker] = r
            finishStacks(asker)
        }
    }

    private func finishStacks(_ asker: FleetRowID) {
        guard let request = stackRequests.removeValue(forKey: asker) else { return }
        links[asker]?.row.stacks = .ready(request.got.sorted { $0.rank < $1.rank })
    }

    /// The key that groups the ranks of one DDP job: its log (the same for every rank), with its Slurm job.
    static func jobKey(_ row: FleetRow) -> String? {
        guard let w = row.worldSize, w > 1, let log = row.log else { return nil }
        return log + "\u{0}" + (row.slurm?.jobID ?? "")
    }

    /// Groups ranks under their job's rank 0 (or lowest rank present), orders the rows, and hands them over.
    private func publish() {
        var groups: [String: [FleetRow]] = [:]
        var rows: [FleetRow] = []
        for link in links.values {
            var row = link.row
            if let id = row.slurm?.jobID { row.job = jobs.first { $0.id == id } }
            if let key = Self.jobKey(row) { groups[key, default: []].append(row) } else { rows.append(row) }
        }
        for (_, members) in groups {
            let sorted = members.sorted { ($0.rank ?? 0) < ($1.rank ?? 0) }
            var head = sorted[0]
            head.ranks = Array(sorted.dropFirst())
            rows.append(head)
        }
        rows.sort { a, b in
            if a.connection.isEnded != b.connection.isEnded { return !a.connection.isEnded }
            if a.seenAt != b.seenAt { return a.seenAt > b.seenAt }
            return a.id.socket < b.id.socket
        }
        lock.withLock {
            if rows != published { published = rows; changes += 1 }
        }
    }
}
