import Foundation
import LRBridge
import LRTUI

/// The fleet of live runs as the runs table sees it: rows of plain values, commands and stacks requests passed on,
/// the fleet's per-row answers handed over once each, and a run's attach dashboard (or an overlay of several logs)
/// opened in this process.
final class FleetRunsSource: RunsSource {
    let fleet: Fleet
    let theme: Theme
    /// The fleet's rows by the table's id (the row's host:socket).
    private var byID: [String: FleetRow] = [:]
    /// The answer each row had when it was last handed over, so each answer reaches the table once.
    private var delivered: [String: FleetAnswer] = [:]
    /// Rows whose stacks were asked for and not handed over yet.
    private var awaitingStacks: Set<String> = []
    /// The rows that are no run (Slurm jobs without one, hosts that cannot be reached), and answers for commands
    /// sent to them.
    private var notRuns: Set<String> = []
    private var refusals: [RunsAnswer] = []
    private var refusedStacks: [RunsStacks] = []

    init(fleet: Fleet, theme: Theme) { self.fleet = fleet; self.theme = theme }

    /// The rows as last built, the fleet's generation then, and when: rebuilt when the fleet changed, and once a
    /// second for the step ages, so an idle table draws once a second, not every poll.
    private var built: (rows: [RunsRow], generation: Int, at: Date)?

    func snapshot() -> [RunsRow] {
        let now = Date()
        let generation = fleet.generation
        if let b = built, b.generation == generation, now.timeIntervalSince(b.at) < 1 { return b.rows }
        let rows = fleet.snapshot()
        byID = Dictionary(rows.map { ($0.id.description, $0) }) { a, _ in a }
        var shown = rows.map { Self.row($0, now: now) }
        // squeue's jobs without a run in the table (pending, or running before their run registered): rows without
        // metrics, so a --slurm table shows the whole queue.
        let withRuns = Set(rows.compactMap { $0.slurm?.jobID })
        notRuns = Set()
        for job in fleet.slurmJobs() where !withRuns.contains(job.id) {
            let id = "slurm:" + job.id
            notRuns.insert(id)
            let waiting = job.reason.isEmpty || job.reason == "None" ? nil : job.reason
            shown.append(RunsRow(id: id, name: job.name, kind: "slurm", host: job.state == "RUNNING" ? job.nodes : "",
                                 state: job.state.lowercased(), reason: waiting ?? (job.state == "RUNNING" ? "no lrtop run yet" : nil),
                                 job: Self.job(job)))
        }
        // A host that cannot be surveyed (or squeue that cannot answer) is a row saying why, where its runs would be.
        let problems = fleet.hostProblemsNow
        for host in problems.keys.sorted() {
            let id = "host:" + host
            notRuns.insert(id)
            shown.append(RunsRow(id: id, name: host == "squeue" ? "squeue" : host + ":", kind: host == "squeue" ? "slurm" : "host",
                                 host: host == "squeue" ? "" : host, state: "unreachable", reason: problems[host]))
        }
        built = (shown, generation, now)
        return shown
    }

    static func row(_ f: FleetRow, now: Date) -> RunsRow {
        let s = f.status
        let figures = s?.figures ?? BridgeFigures()
        var state = s?.state ?? "connecting"
        var reason = s?.reason
        var ended = false
        switch f.connection {
        case .connecting: if s == nil { state = "connecting" }
        case .live: break
        case .ended(let why): ended = true; state = s.map { $0.state == "running" || $0.state == "paused" ? "ended" : $0.state } ?? "ended"; reason = why
        case .unreachable(let why): state = "unreachable"; reason = why
        }
        if let e = figures.ended, !e.isEmpty { reason = e }
        return RunsRow(id: f.id.description, name: f.name, kind: f.kind ?? "plain", worldSize: f.worldSize,
                       rank: nil, host: f.host, state: state, reason: reason, ended: ended,
                       step: s?.step, totalSteps: s?.totalSteps, epoch: s?.epoch, lrs: s?.lrs ?? [], groups: s?.groups ?? [],
                       loss: figures.loss, lossTrend: figures.lossTrend, valLoss: figures.valLoss, valAcc: figures.valAcc,
                       stepsPerSecond: figures.stepsPerSecond, samplesPerSecond: figures.samplesPerSecond,
                       etaSeconds: figures.etaSeconds, gpuPeak: figures.gpuMemPeak, gpuTotal: figures.gpuMemTotal,
                       stepAge: f.stepAge(now: now), stepTime: figures.stepTime,
                       ranks: (f.worldSize ?? 1) > 1 ? ([f] + f.ranks).map { rankRow($0, job: f, now: now) } : [],
                       log: f.log, job: f.job.map(job))
    }

    static func job(_ j: Slurm.Job) -> RunsJob {
        RunsJob(id: j.id, partition: j.partition, state: j.state, timeLeft: j.timeLeft)
    }

    /// A rank of a job: its own step, step time and age (rank 0 is the job's own process).
    static func rankRow(_ r: FleetRow, job: FleetRow, now: Date) -> RunsRow {
        let rank = r.status?.figures.rank ?? r.rank ?? 0
        var row = RunsRow(id: job.id.description + "#rank\(rank)", name: job.name, kind: job.kind ?? "plain", rank: rank,
                          host: r.host, state: r.status?.state ?? (r.connection.isLive ? "running" : "connecting"),
                          ended: r.connection.isEnded, step: r.status?.step, stepAge: r.stepAge(now: now),
                          stepTime: r.status?.figures.stepTime)
        if case .unreachable(let why) = r.connection { row.state = "unreachable"; row.reason = why }
        return row
    }

    func send(_ command: String, to ids: [String]) {
        let targets = ids.compactMap { byID[$0]?.id }
        for id in ids { delivered[id] = nil }
        for id in ids where notRuns.contains(id) {
            let what = id.hasPrefix("slurm:") ? "job \(id.dropFirst(6)) has no lrtop run to steer yet" : "no run there to steer"
            refusals.append(RunsAnswer(id: id, ok: false, message: "\(command): \(what)"))
        }
        fleet.send(command, to: targets)
    }

    func drainAnswers() -> [RunsAnswer] {
        var out = refusals
        refusals.removeAll()
        for (id, row) in byID {
            guard let answer = row.answer, answer.ok != nil, delivered[id] != answer else { continue }
            delivered[id] = answer
            out.append(RunsAnswer(id: id, ok: answer.ok!, message: Self.words(answer, groups: row.status?.groups ?? [])))
        }
        return out
    }

    /// The answer in the dashboard's words, through its one formatter (`Dashboard.answerText`) less the mark the
    /// row draws itself: what the run applied ("lr *0.5: lr 1.00e-3→5.00e-4 (at step 120)"), or why it did not.
    static func words(_ answer: FleetAnswer, groups: [String] = []) -> String {
        switch answer {
        case .pending(let text): return text
        case .notSent(let text, let reason): return text + ": " + reason
        case .answered(let reply):
            let text = Dashboard.answerText(reply, groups: groups)
            return text.hasPrefix("✓ ") || text.hasPrefix("✗ ") ? String(text.dropFirst(2)) : text
        }
    }

    func requestStacks(of id: String) {
        if notRuns.contains(id) {
            refusedStacks.append(RunsStacks(id: id, error: id.hasPrefix("slurm:") ? "job \(id.dropFirst(6)) has no lrtop run yet" : "no run there"))
            return
        }
        guard let row = byID[id] else { return }
        awaitingStacks.insert(id)
        fleet.stacks(of: row.id)
    }

    func drainStacks() -> [RunsStacks] {
        var out = refusedStacks
        refusedStacks.removeAll()
        for id in awaitingStacks {
            guard case .ready(let ranks)? = byID[id]?.stacks else { continue }
            awaitingStacks.remove(id)
            for r in ranks {
                out.append(RunsStacks(id: id, rank: r.rank, threads: r.threads.map { t in
                    RunsThreadStack(name: t.name, isMain: t.main, phase: t.phase,
                                    frames: t.frames.map { .init(file: $0.file, line: $0.line, function: $0.function, code: $0.code) })
                }, error: r.error))
            }
        }
        return out
    }

    /// The run's attach dashboard, over its own connection; going back to the table detaches it (the run goes on).
    func dashboard(for id: String) -> Result<RunsChild, RunsSourceError> {
        guard let row = byID[id] else { return .failure(RunsSourceError("that run is no longer listed")) }
        guard let log = row.log else { return .failure(RunsSourceError("\(row.name): its log is not known yet (the run has not greeted)")) }
        if row.connection.isEnded {
            return .failure(RunsSourceError("\(row.name) has ended: replay it with 'lrtop replay \(log)'"))
        }
        if row.id.host != fleet.options.host { return remoteDashboard(row) }
        let connection: BridgeConnection
        do {
            connection = try BridgeConnection(path: row.socket)
        } catch {
            return .failure(RunsSourceError("\(row.name): \(error)"))
        }
        let source = Attach.makeSource(connection, URL(fileURLWithPath: log))
        let dashboard = Dashboard(source: source, theme: theme, themeStore: Themes.store)
        dashboard.showNotice("attached to \(row.name) · esc or q back to the runs table, the run goes on")
        return .success(RunsChild(dashboard: dashboard, close: { source.detach() }))
    }

    /// Another host's run, as `lrtop attach HOST:SOCKET` reaches it (through the host's master, which the fleet
    /// holds open, so this takes a forward and a greeting), with its log copied as it grows.
    func remoteDashboard(_ row: FleetRow) -> Result<RunsChild, RunsSourceError> {
        let opened: RemoteAttach
        do {
            opened = try RemoteAttach.open(.host(row.id.host, spec: row.socket), progress: { _ in },
                                           pick: { runs, _ in runs[0] }, cancelled: { Interrupts.pending != 0 })
        } catch {
            return .failure(RunsSourceError("\(row.name) on \(row.id.host): \(error)"))
        }
        let source = Attach.makeSource(BridgeConnection(adopting: opened.connection), opened.localLog)
        source.transport = opened.transport
        let dashboard = Dashboard(source: source, theme: theme, themeStore: Themes.store)
        dashboard.showNotice("attached to \(row.name) on \(row.id.host) · esc or q back to the runs table, the run goes on")
        return .success(RunsChild(dashboard: dashboard, close: { source.detach() }))
    }

    /// The runs' logs in one dashboard, each followed as it grows (as `lrtop watch` follows one).
    func overlay(of ids: [String]) -> Result<RunsChild, RunsSourceError> {
        let tagged = ids.compactMap { byID[$0] }
        let rows = tagged.filter { $0.log != nil && $0.id.host == fleet.options.host }
        if rows.isEmpty, let far = tagged.first(where: { $0.id.host != fleet.options.host }) {
            // Another host's log is not readable here; its dashboard (enter) copies it over ssh.
            return .failure(RunsSourceError("the overlay draws this machine's logs; \(far.name) runs on \(far.id.host): enter opens its dashboard"))
        }
        guard let first = rows.first else { return .failure(RunsSourceError("none of these runs has a log to draw yet")) }
        func watch(_ r: FleetRow) -> WatchSource { WatchSource(url: URL(fileURLWithPath: r.log!), pollInterval: 0.5, title: r.name) }
        let dashboard = Dashboard(source: watch(first), overlays: rows.dropFirst().map(watch), theme: theme,
                                  themeStore: Themes.store)
        dashboard.showNotice("\(rows.count) runs overlaid, following their logs · esc or q back to the runs table")
        return .success(RunsChild(dashboard: dashboard, close: {}))
    }
}
