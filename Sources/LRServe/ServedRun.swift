import Foundation
import Glibc
import Synchronization
import LRBridge
import LRCommand
import LRLog
import LRTrain

/// A run trained by `lrtop train` served on its control socket and listed in the run registry (docs/bridge.md):
/// the same protocol the Python bridge serves, so `lrtop attach`, `lrtop ls` and `lrtop runs` see both alike.
/// Commands from the socket go into the trainer's channel, the same queue the live UI's keys use, applied at the
/// next step boundary; their answers come back from it by id. Everything here runs on the socket's service
/// thread: the trainer only sets its activity, feeds `RunProgress` and copies log lines.
///
///     var options = RunOptions()
///     let served = ServedRun.prepare(options: &options, config: config, warn: { printErr($0) })
///     let trainer = try Trainer(config: config, options: options)
///     served?.start(trainer: trainer)
///     defer { served?.close() }
public final class ServedRun: RunService, @unchecked Sendable {
    public let server: RunServer
    public let progress: RunProgress
    let records: LogLineRing
    private let warn: @Sendable (String) -> Void
    // Set once by `start`, before the service thread runs.
    private var channel: TrainerChannel?
    private var registry: RegistryWriter?
    private var helloLine: [UInt8] = []
    // The service thread's own state.
    private var pending: [Int: (client: Int, id: [UInt8]?)] = [:]
    private var lastPhase: RunPhase? = nil
    /// The most commands waiting for their boundary at once; beyond, a command is refused at once (as the bridge).
    static let maxQueued = 1024

    private init(server: RunServer, progress: RunProgress, records: LogLineRing, warn: @escaping @Sendable (String) -> Void) {
        self.server = server; self.progress = progress; self.records = records; self.warn = warn
    }

    /// Binds the socket before the trainer is made (its log header names the socket) and hooks the trainer's
    /// options: the socket path, the log lines to push, progress fed from every record. nil (after one `warn`
    /// line) when no socket can be made: the run trains and logs without one.
    public static func prepare(options: inout RunOptions, config: TrainConfig,
                               warn: @escaping @Sendable (String) -> Void) -> ServedRun? {
        let records = LogLineRing()
        let server: RunServer
        do { server = try RunServer(records: records, warn: warn) } catch {
            warn("lrtop: cannot open this run's control socket (\(error)); it trains and logs, but lrtop attach can only watch it")
            return nil
        }
        ExitCleanup.add(server.path)
        let progress = RunProgress(samplesPerStep: config.batchSize * config.accumSteps)
        options.socketPath = server.path
        options.logLines = records
        let earlier = options.observer
        options.observer = { record in
            earlier?(record)
            progress.note(record)
        }
        return ServedRun(server: server, progress: progress, records: records, warn: warn)
    }

    /// Registers the run and starts serving it.
    public func start(trainer: Trainer) {
        channel = trainer.channel
        let s = trainer.channel.status
        let name = trainer.config.name ?? trainer.runDirectory?.lastPathComponent ?? "run"
        let host = LocalRegistry.hostname()
        var hello = JSONLine(type: "hello")
        hello.add("protocol", BridgeProtocol.version)
        hello.add("run", name)
        hello.add("log", trainer.logURL?.path ?? s.logPath ?? "")
        hello.add("pid", Int(getpid()))
        hello.add("framework", "lrtop")
        hello.add("world_size", 1)
        hello.add("rank", 0)
        hello.add("host", host)
        hello.add("records", true)
        helloLine = hello.line

        var entry = RegistryEntry(host: host, pid: Int(getpid()), socket: server.path)
        entry.log = trainer.logURL?.path
        entry.runDir = trainer.runDirectory?.path
        entry.name = name
        entry.kind = "lrtop"
        entry.worldSize = 1
        entry.rank = 0
        entry.start = ISO8601DateFormatter().string(from: Date())
        let env = ProcessInfo.processInfo.environment
        if let job = env["SLURM_JOB_ID"], !job.isEmpty {
            entry.slurm = RegistryEntry.Slurm(jobID: job, procID: env["SLURM_PROCID"].flatMap { Int($0) },
                                              node: env["SLURMD_NODENAME"])
        }
        registry = RegistryWriter(entry: entry, warn: warn)
        server.start(self)
    }

    /// Sends the final status (with `ended`), closes the socket and removes the registry entry.
    public func close() {
        server.close()
        registry?.remove()
    }

    // MARK: RunService (the service thread)

    public func hello() -> [UInt8] { helloLine }

    public func status() -> [UInt8] {
        guard let channel else { return JSONLine(type: "status").line }
        let s = channel.status
        let f = progress.figures()
        var m = JSONLine(type: "status")
        m.add("state", s.phase.rawValue)
        m.add("step", s.step)
        m.add("epoch", s.epoch)
        m.add("total_steps", s.totalSteps)
        m.add("lr", s.lrs)
        m.add("groups", strings: s.groupNames)
        m.add("hold", s.held.contains(true))
        m.add("override", s.overridden.contains(true))
        m.add("scheduler", s.schedulerStatus.isEmpty ? s.schedulerSpec : s.schedulerStatus)
        m.add("checkpoints", s.checkpoints)
        m.add("reason", s.phase == .paused ? s.message ?? "paused" : nil)
        m.add("rank", 0)
        m.add("loss", f.loss)
        m.add("loss_trend", f.lossTrend)
        m.add("val_loss", f.valLoss)
        m.add("val_acc", f.valAcc)
        m.add("steps_per_s", f.stepsPerSecond)
        m.add("samples_per_s", f.samplesPerSecond)
        var eta: Double? = nil
        if let rate = f.stepsPerSecond, rate > 0, s.phase.isActive { eta = Double(max(0, s.totalSteps - s.step)) / rate }
        m.add("eta_s", eta)
        m.add("step_age", f.stepAge)
        m.add("step_time", f.stepTime)
        m.add("ended", s.phase.isActive ? nil : Self.endWords(f.end, phase: s.phase))
        return m.line
    }

    /// The end reason in a few words ("completed", "SIGTERM", "error: ...").
    static func endWords(_ end: EndRecord?, phase: RunPhase) -> String {
        guard let end else { return phase.rawValue }
        let note = end.message.map { String($0.prefix(200)) }
        switch end.reason {
        case .completed: return "completed"
        // The bridge's words where the two mean the same (docs/bridge.md, protocol E's `ended`).
        case .stopped: return note.map { "stopped: " + $0 } ?? "stopped by a viewer"
        case .interrupted: return note.map { $0.hasPrefix("received ") ? String($0.dropFirst(9)) : $0 } ?? "a signal"
        case .diverged: return "diverged (the guard stopped it)" + (note.map { ": " + $0 } ?? "")
        case .failed: return "error: " + (note ?? "the run failed")
        }
    }

    public func command(text: String, id: [UInt8]?, client: Int) -> [UInt8] {
        guard let channel else { return Self.ack(id, error: "the run is starting; send it again in a moment") }
        guard channel.status.phase.isActive else {
            return Self.ack(id, error: "the run has ended (\(channel.status.phase.rawValue)): nothing to steer")
        }
        guard pending.count < Self.maxQueued else {
            return Self.ack(id, error: "the run has \(Self.maxQueued) commands waiting for its next step boundary; send this one again once they are applied")
        }
        let command: Command
        do { command = try CommandParser.parse(text) } catch {
            // Logged as every refused command is (the run log keeps what each viewer sent).
            channel.send(refused: text, because: error, from: .socket)
            return Self.ack(id, error: error.description)
        }
        pending[channel.send(command, text: text, from: .socket)] = (client, id)
        return Self.ack(id, error: nil)
    }

    public func stacks(id: [UInt8]?) -> [UInt8] {
        var thread = JSONLine()
        thread.add("name", "trainer")
        thread.add("main", true)
        thread.add("phase", channel?.activity.describe() ?? "starting")
        thread.add("frames", raw: Array("[]".utf8))
        var m = JSONLine(type: "stacks")
        m.add("id", raw: id ?? Array("null".utf8))
        m.add("rank", 0)
        m.add("threads", raw: [UInt8(ascii: "[")] + thread.object + [UInt8(ascii: "]")])
        return m.line
    }

    public func tick() -> (answers: [(client: Int, line: [UInt8])], statusDue: Bool) {
        registry?.beatIfDue()
        guard let channel else { return ([], false) }
        var answers: [(client: Int, line: [UInt8])] = []
        for reply in channel.takeSocketReplies() {
            guard let p = pending.removeValue(forKey: reply.id) else { continue }
            answers.append((p.client, Self.result(p.id, reply.event)))
        }
        let phase = channel.status.phase
        let changed = phase != lastPhase
        lastPhase = phase
        return (answers, changed || !answers.isEmpty)
    }

    static func ack(_ id: [UInt8]?, error: String?) -> [UInt8] {
        var m = JSONLine(type: "ack")
        m.add("id", raw: id ?? Array("null".utf8))
        m.add("ok", error == nil)
        if let error { m.add("error", error) }
        return m.line
    }

    /// A command's answer from the event the trainer logged for it: the same typed fields as the bridge's result
    /// (the command's record, every group's LR before and after, `result`), `message` the note only.
    static func result(_ id: [UInt8]?, _ e: EventRecord) -> [UInt8] {
        var m = JSONLine(type: "result")
        m.add("id", raw: id ?? Array("null".utf8))
        m.add("ok", e.kind == .command)
        m.add("step", e.step)
        if let c = e.command { m.add("command", encoded: c) }
        if e.kind == .command {
            m.add("lrs_before", e.lrsBefore)
            m.add("lrs_after", e.lrsAfter)
            if let r = e.result { m.add("result", encoded: r) }
            if let note = e.message { m.add("message", note) }
        } else {
            m.add("error", e.message ?? "not applied")
        }
        return m.line
    }
}
