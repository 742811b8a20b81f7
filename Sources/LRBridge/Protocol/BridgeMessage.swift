import Foundation
import LRCommand
import LRLog

/// The bridge protocol (docs/bridge.md): JSON Lines both ways over a Unix-domain socket, one object a line, at most
/// `maxLineBytes` bytes a line. Its version is lrtop's one protocol version (python/lrtop/_version.py).
public enum BridgeProtocol {
    public static let version = LRTopVersion.bridgeProtocol
    public static let maxLineBytes = 65_536
    /// The largest count (step, epoch, total steps, pid ...) a peer may send: 2^53, the integers a JSON number holds
    /// exactly. Counts are never negative.
    public static let maxCount = 1 << 53
}

/// The server's greeting, sent as soon as a client connects.
public struct BridgeHello: Equatable, Sendable {
    public var protocolVersion: Int
    /// The run's name (its folder under the log dir).
    public var run: String
    /// Absolute path of the run's JSONL log.
    public var log: String
    public var pid: Int?
    /// "plain", "lightning" or "hf".
    public var framework: String?
    public var worldSize: Int?
    /// The run pushes its log's records to a client that subscribes (docs/bridge.md "Records, pushed").
    public var records: Bool
    /// The serving process's short hostname, and the DDP rank it serves (a rank > 0 only answers status and stacks).
    public var host: String?
    public var rank: Int?

    public init(protocolVersion: Int = BridgeProtocol.version, run: String, log: String, pid: Int? = nil,
                framework: String? = nil, worldSize: Int? = nil, records: Bool = false, host: String? = nil,
                rank: Int? = nil) {
        self.protocolVersion = protocolVersion; self.run = run; self.log = log; self.pid = pid
        self.framework = framework; self.worldSize = worldSize; self.records = records; self.host = host
        self.rank = rank
    }
}

/// What the training process reports about itself: on connect, on every change, after each applied command and
/// at least every half second.
public struct BridgeStatus: Equatable, Sendable {
    /// "running", "paused", "finished" (other words are shown as they are).
    public var state: String
    public var step: Int
    public var epoch: Int
    public var totalSteps: Int?
    /// The LR of each param group as the optimizer will use it next.
    public var lrs: [Double]
    public var groups: [String]
    /// The LR is held against the scheduler (`lr hold`).
    public var hold: Bool
    /// A manual LR is in force (until the scheduler writes it again, or `lr release`).
    public var override: Bool
    /// The scheduler in words ("cosine T_max=200").
    public var scheduler: String?
    /// AMP's loss scale (`GradScaler`), when there is one.
    public var lossScale: Double?
    /// Optimizer steps skipped by AMP because of inf/NaN gradients.
    public var skippedSteps: Int?
    public var checkpoints: Int?
    /// Why the run is paused, in one line (the guard's reason, "paused by a viewer"); nil while it runs.
    public var reason: String?
    /// While a find-lr sweep runs: its progress and sub-run folder.
    public var findLR: BridgeFindLR?
    /// How the script numbers its epochs (0 or 1), once known; `epoch` stays 0-based.
    public var epochBase: Int?
    /// Steps into the script's current epoch as its data loader counts them (a find-lr sweep and the steps a
    /// rollback undid drew batches too).
    public var epochStep: Int?
    /// What a table of runs shows (protocol "E"); nil when the server does not know (or predates it).
    public var figures = BridgeFigures()

    public init(state: String, step: Int, epoch: Int = 0, totalSteps: Int? = nil, lrs: [Double] = [],
                groups: [String] = [], hold: Bool = false, override: Bool = false, scheduler: String? = nil,
                lossScale: Double? = nil, skippedSteps: Int? = nil, checkpoints: Int? = nil) {
        self.state = state; self.step = step; self.epoch = epoch; self.totalSteps = totalSteps; self.lrs = lrs
        self.groups = groups; self.hold = hold; self.override = override; self.scheduler = scheduler
        self.lossScale = lossScale; self.skippedSteps = skippedSteps; self.checkpoints = checkpoints
    }

    public init(state: String, step: Int, epoch: Int = 0, totalSteps: Int? = nil, lrs: [Double] = [],
                groups: [String] = [], hold: Bool = false, override: Bool = false, scheduler: String? = nil,
                lossScale: Double? = nil, skippedSteps: Int? = nil, checkpoints: Int? = nil, reason: String?,
                findLR: BridgeFindLR?, epochBase: Int?, epochStep: Int? = nil) {
        self.init(state: state, step: step, epoch: epoch, totalSteps: totalSteps, lrs: lrs, groups: groups, hold: hold,
                  override: override, scheduler: scheduler, lossScale: lossScale, skippedSteps: skippedSteps,
                  checkpoints: checkpoints)
        self.reason = reason; self.findLR = findLR; self.epochBase = epochBase; self.epochStep = epochStep
    }
}

/// The status fields of protocol "E" (spec #25 §2): a run's progress as a table of runs shows it. Every one is
/// optional: nil when the run does not know it yet (no batch size, no total) or the server predates them.
public struct BridgeFigures: Equatable, Sendable {
    /// Smoothed training loss (EMA weight 0.6, the dashboard's default smoothing).
    public var loss: Double?
    /// Up to 24 recent values of that smoothed loss, oldest first.
    public var lossTrend: [Double] = []
    public var valLoss: Double?
    public var valAcc: Double?
    public var stepsPerSecond: Double?
    public var samplesPerSecond: Double?
    public var etaSeconds: Double?
    /// Seconds since the last optimizer step when the status was sent (a stalled loop's age grows).
    public var stepAge: Double?
    /// Median seconds per optimizer step over the last <= 64 steps.
    public var stepTime: Double?
    /// Why the run ended ("completed", "stopped by a viewer", "SIGTERM", "error: ...") once it has.
    public var ended: String?
    /// The DDP rank whose server sent it.
    public var rank: Int?
    /// Bytes of GPU memory: the peak the run's tensors held since the last look, and the device's total (the
    /// status's `gpu` object, rank 0 of a run on a GPU).
    public var gpuMemPeak: Double?
    public var gpuMemTotal: Double?
    public init() {}
}

/// One thread of a run's process, as a stacks answer (spec #25 §3) lists it: Python frames outermost first, or, for
/// lrtop's own trainer, what the trainer thread is doing (`phase`) and no frames.
public struct ThreadStack: Equatable, Sendable, Decodable {
    public struct Frame: Equatable, Sendable, Decodable {
        public var file: String
        public var line: Int
        public var function: String
        public var code: String?
        public init(file: String, line: Int, function: String, code: String? = nil) {
            self.file = file; self.line = line; self.function = function; self.code = code
        }
        enum CodingKeys: String, CodingKey { case file, line, function, code }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            file = ThreadStack.text(c, .file) ?? "?"
            line = ((try? c.decodeIfPresent(Int.self, forKey: .line)) ?? nil).map { max(0, $0) } ?? 0
            function = ThreadStack.text(c, .function) ?? "?"
            code = ThreadStack.text(c, .code)
        }
    }
    public var name: String
    public var ident: Int?
    public var main: Bool
    public var phase: String?
    public var frames: [Frame]
    public init(name: String, ident: Int? = nil, main: Bool = false, phase: String? = nil, frames: [Frame] = []) {
        self.name = name; self.ident = ident; self.main = main; self.phase = phase; self.frames = frames
    }

    /// The bounds of spec §3: 64 threads of 100 frames, strings of 4 KiB, are all a viewer keeps.
    public static let maxThreads = 64, maxFrames = 100, maxText = 4096

    enum CodingKeys: String, CodingKey { case name, ident, main, phase, frames }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = Self.text(c, .name) ?? "?"
        ident = (try? c.decodeIfPresent(Int.self, forKey: .ident)) ?? nil
        main = ((try? c.decodeIfPresent(Bool.self, forKey: .main)) ?? nil) ?? false
        phase = Self.text(c, .phase)
        frames = Array((((try? c.decodeIfPresent([Frame].self, forKey: .frames)) ?? nil) ?? []).prefix(Self.maxFrames))
    }

    /// A string field cut to `maxText` bytes with terminal control characters made visible (it is drawn on a screen).
    static func text<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) -> String? {
        guard let s = (try? c.decodeIfPresent(String.self, forKey: key)) ?? nil else { return nil }
        return TerminalText.sanitized(String(decoding: s.utf8.prefix(maxText), as: UTF8.self))
    }
}

/// A find-lr sweep in progress, as the status reports it: `{"step":k,"steps":n,"subrun":"subruns/find-lr-11"}`.
public struct BridgeFindLR: Equatable, Sendable, Decodable {
    public var step: Int
    public var steps: Int
    public var subrun: String?
    public init(step: Int, steps: Int, subrun: String? = nil) { self.step = step; self.steps = steps; self.subrun = subrun }
}

/// What an applied command did, as data (protocol-additions D): the same fields as the event the run logs for it,
/// so the dashboard words every answer with one formatter.
public struct BridgeAnswer: Equatable, Sendable {
    public var command: Command?
    public var lrsBefore: [Double]
    public var lrsAfter: [Double]
    public var result: EventResult?
    public init(command: Command? = nil, lrsBefore: [Double] = [], lrsAfter: [Double] = [], result: EventResult? = nil) {
        self.command = command; self.lrsBefore = lrsBefore; self.lrsAfter = lrsAfter; self.result = result
    }
}

/// One line from the server.
public enum ServerMessage: Equatable, Sendable {
    case hello(BridgeHello)
    /// The command with this id parsed and is queued for the next optimizer-step boundary (`ok`), or was refused.
    case ack(id: Int, ok: Bool, error: String?)
    /// The command with this id was applied at `step` (`ok`, with what changed in `message` and, from a bridge that
    /// sends them, as data in `answer`), or could not apply.
    case result(id: Int, ok: Bool, step: Int?, message: String?, error: String?, answer: BridgeAnswer?)
    case status(BridgeStatus)
    /// The server refused a line this client sent.
    case error(String)
    /// Line `line` of the run's log, pushed as it was made.
    case record(line: Int, RunRecord)
    /// Lines `from ..< to` of the run's log are to be read from its file (the server no longer holds them, or one
    /// is too long for a message; or, `reason` set, its record could not be read here).
    case gap(from: Int, to: Int, reason: String?)
    /// The threads of the process behind the socket (rank `rank` of a DDP job), answering the stacks request `id`.
    case stacks(id: Int, rank: Int?, threads: [ThreadStack])

    /// Reads one line (without its newline). Errors name what is wrong with the line.
    public static func parse(_ line: some Collection<UInt8>, records: RunLogLineDecoder? = nil) throws(BridgeError) -> ServerMessage {
        if line.starts(with: PushedRecord.prefix),
           let pushed = PushedRecord.parse(Array(line), decoder: records ?? RunLogLineDecoder()) { return pushed }
        let o: Wire
        do {
            o = try decoder.decode(Wire.self, from: Data(line))
        } catch DecodingError.typeMismatch {
            throw BridgeError("not a JSON object: \(preview(line))")
        } catch {
            throw BridgeError("not JSON: \(preview(line))")
        }
        guard let type = o.type else { throw BridgeError("no \"type\" in \(preview(line))") }
        // Every number from the peer is untrusted: a count out of range (a step of Int.min) refuses the line here,
        // once, so nothing downstream does arithmetic on it.
        for (key, value) in o.counts {
            guard let value, !(0...BridgeProtocol.maxCount).contains(value) else { continue }
            throw BridgeError("\(type) message with \"\(key)\" = \(value): a count from 0 to 2^53 is expected; line ignored")
        }
        if let scale = o.lossScale, !(scale.isFinite && scale >= 0) {
            throw BridgeError("\(type) message with \"loss_scale\" = \(scale): a finite number >= 0 is expected; line ignored")
        }
        func require<T>(_ key: String, _ value: T?) throws(BridgeError) -> T {
            guard let value else { throw BridgeError("\(type) message without a valid \"\(key)\": \(preview(line))") }
            return value
        }
        switch type {
        case "hello":
            return .hello(BridgeHello(protocolVersion: try require("protocol", o.protocolVersion), run: o.run ?? "",
                                      log: try require("log", o.log), pid: o.pid, framework: o.framework,
                                      worldSize: o.worldSize, records: o.records ?? false, host: o.host, rank: o.rank))
        case "gap":
            let from = try require("from_line", o.fromLine), to = try require("to_line", o.toLine)
            guard from < to else { throw BridgeError("gap message from line \(from) to \(to): an empty range; line ignored") }
            return .gap(from: from, to: to, reason: nil)
        case "ack":
            return .ack(id: try require("id", o.id), ok: try require("ok", o.ok), error: o.error)
        case "result":
            var answer: BridgeAnswer? = nil
            if o.command != nil || o.lrsBefore != nil || o.lrsAfter != nil || o.result != nil {
                answer = BridgeAnswer(command: o.command, lrsBefore: o.lrsBefore?.map { $0 ?? .nan } ?? [],
                                      lrsAfter: o.lrsAfter?.map { $0 ?? .nan } ?? [], result: o.result)
            }
            return .result(id: try require("id", o.id), ok: try require("ok", o.ok), step: o.step, message: o.message,
                           error: o.error, answer: answer)
        case "status":
            var status = BridgeStatus(
                state: try require("state", o.state), step: o.step ?? 0, epoch: o.epoch ?? 0, totalSteps: o.totalSteps,
                lrs: o.lr?.map { $0 ?? .nan } ?? [], groups: o.groups ?? [], hold: o.hold ?? false,
                override: o.override ?? false, scheduler: o.scheduler, lossScale: o.lossScale,
                skippedSteps: o.skippedSteps, checkpoints: o.checkpoints, reason: o.reason, findLR: o.findLR,
                epochBase: o.epochBase.flatMap { (0...1).contains($0) ? $0 : nil }, epochStep: o.epochStep)
            status.figures = o.figures
            return .status(status)
        case "stacks":
            return .stacks(id: try require("id", o.id), rank: o.rank,
                           threads: Array((o.threads ?? []).prefix(ThreadStack.maxThreads)))
        case "error":
            return .error(o.error ?? "(no text)")
        default:
            throw BridgeError("unknown message type '\(type)'")
        }
    }

    private static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        // The run log's spelling of the numbers JSON lacks.
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity",
                                                                  nan: "NaN")
        return d
    }()

    /// Every field any server message has; a field of the wrong type reads as missing.
    private struct Wire: Decodable {
        var type, error, message, state, scheduler, run, log, framework: String?
        var id, step, epoch, totalSteps, skippedSteps, checkpoints, protocolVersion, pid, worldSize: Int?
        var fromLine, toLine: Int?
        var ok, hold, override, records: Bool?
        var lossScale: Double?
        var lr: [Double?]?
        var groups: [String]?
        var reason: String?
        var findLR: BridgeFindLR?
        var epochBase: Int?
        var epochStep: Int?
        var command: Command?
        var lrsBefore, lrsAfter: [Double?]?
        var result: EventResult?
        var host: String?
        var rank: Int?
        var figures = BridgeFigures()
        var threads: [ThreadStack]?

        /// The fields that count something, by their wire names.
        var counts: [(String, Int?)] {
            [("step", step), ("epoch", epoch), ("total_steps", totalSteps), ("skipped_steps", skippedSteps), ("rank", rank),
             ("checkpoints", checkpoints), ("protocol", protocolVersion), ("pid", pid), ("world_size", worldSize),
             ("from_line", fromLine), ("to_line", toLine),
             ("find_lr.step", findLR?.step), ("find_lr.steps", findLR?.steps), ("epoch_step", epochStep)]
        }

        enum CodingKeys: String, CodingKey {
            case type, error, message, state, scheduler, run, log, framework, id, step, epoch, ok, hold, override, lr, groups
            case totalSteps = "total_steps", skippedSteps = "skipped_steps", checkpoints, protocolVersion = "protocol"
            case pid, worldSize = "world_size", lossScale = "loss_scale"
            case fromLine = "from_line", toLine = "to_line", records
            case reason, findLR = "find_lr", epochBase = "epoch_base", epochStep = "epoch_step", command
            case lrsBefore = "lrs_before"
            case lrsAfter = "lrs_after", result
            case host, rank, threads, loss, ended
            case lossTrend = "loss_trend", valLoss = "val_loss", valAcc = "val_acc", stepsPerS = "steps_per_s"
            case samplesPerS = "samples_per_s", etaS = "eta_s", stepAge = "step_age", stepTime = "step_time"
            case gpu
        }

        /// The status's `gpu` object: memory figures in bytes (SystemMetrics' names).
        struct GPUFigures: Decodable {
            var peak: Double?
            var total: Double?
            enum CodingKeys: String, CodingKey { case peak = "gpu_mem_peak", total = "gpu_mem_total" }
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                func bytes(_ k: CodingKeys) -> Double? {
                    guard let x = (try? c.decodeIfPresent(Double.self, forKey: k)) ?? nil, x.isFinite, x >= 0 else { return nil }
                    return x
                }
                peak = bytes(.peak); total = bytes(.total)
            }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func text(_ k: CodingKeys) -> String? { (try? c.decodeIfPresent(String.self, forKey: k)) ?? nil }
            func int(_ k: CodingKeys) -> Int? { (try? c.decodeIfPresent(Int.self, forKey: k)) ?? nil }
            func flag(_ k: CodingKeys) -> Bool? { (try? c.decodeIfPresent(Bool.self, forKey: k)) ?? nil }
            type = text(.type); error = text(.error); message = text(.message); state = text(.state)
            scheduler = text(.scheduler); run = text(.run); log = text(.log); framework = text(.framework)
            id = int(.id); step = int(.step); epoch = int(.epoch); totalSteps = int(.totalSteps)
            skippedSteps = int(.skippedSteps); checkpoints = int(.checkpoints); protocolVersion = int(.protocolVersion)
            pid = int(.pid); worldSize = int(.worldSize)
            ok = flag(.ok); hold = flag(.hold); override = flag(.override); records = flag(.records)
            fromLine = int(.fromLine); toLine = int(.toLine)
            lossScale = (try? c.decodeIfPresent(Double.self, forKey: .lossScale)) ?? nil
            lr = (try? c.decodeIfPresent([Double?].self, forKey: .lr)) ?? nil
            groups = (try? c.decodeIfPresent([String].self, forKey: .groups)) ?? nil
            reason = text(.reason)
            findLR = (try? c.decodeIfPresent(BridgeFindLR.self, forKey: .findLR)) ?? nil
            epochBase = int(.epochBase)
            epochStep = int(.epochStep)
            // A command record is held to the language's rules as it is read (`Command`'s decoder): a bad one reads
            // as missing, and the answer is worded from the text sent.
            command = (try? c.decodeIfPresent(Command.self, forKey: .command)) ?? nil
            lrsBefore = (try? c.decodeIfPresent([Double?].self, forKey: .lrsBefore)) ?? nil
            lrsAfter = (try? c.decodeIfPresent([Double?].self, forKey: .lrsAfter)) ?? nil
            result = (try? c.decodeIfPresent(EventResult.self, forKey: .result)) ?? nil
            host = text(.host).map { TerminalText.sanitized(String($0.prefix(255))) }
            rank = int(.rank)
            // Protocol "E": a figure that is not a finite number >= 0 (a loss may be negative) reads as unknown.
            func real(_ k: CodingKeys, negative: Bool = false) -> Double? {
                guard let x = (try? c.decodeIfPresent(Double.self, forKey: k)) ?? nil, x.isFinite, negative || x >= 0
                else { return nil }
                return x
            }
            figures.loss = real(.loss, negative: true)
            let trend = ((try? c.decodeIfPresent([Double?].self, forKey: .lossTrend)) ?? nil) ?? []
            figures.lossTrend = trend.suffix(24).compactMap { $0.flatMap { $0.isFinite ? $0 : nil } }
            figures.valLoss = real(.valLoss, negative: true); figures.valAcc = real(.valAcc)
            figures.stepsPerSecond = real(.stepsPerS); figures.samplesPerSecond = real(.samplesPerS)
            figures.etaSeconds = real(.etaS); figures.stepAge = real(.stepAge); figures.stepTime = real(.stepTime)
            figures.ended = text(.ended).map { TerminalText.sanitized(String($0.prefix(400))) }
            figures.rank = rank
            let gpu = (try? c.decodeIfPresent(GPUFigures.self, forKey: .gpu)) ?? nil
            figures.gpuMemPeak = gpu?.peak; figures.gpuMemTotal = gpu?.total
            threads = (try? c.decodeIfPresent([ThreadStack].self, forKey: .threads)) ?? nil
        }
    }

    static func preview(_ line: some Collection<UInt8>) -> String {
        let text = TerminalText.sanitized(String(decoding: line.prefix(80), as: UTF8.self))
        return "'" + text + (line.count > 80 ? "…" : "") + "'"
    }
}

/// Lines a client sends.
public enum ClientMessage {
    public static func hello() -> [UInt8] {
        Array("{\"type\":\"hello\",\"client\":\"lrtop\",\"protocol\":\(BridgeProtocol.version)}\n".utf8)
    }

    /// Asks for the log's records from line `fromLine` on (the number of complete lines already read from the file),
    /// then each new one as it is made.
    public static func subscribe(fromLine: Int) -> [UInt8] {
        Array("{\"type\":\"subscribe\",\"from_line\":\(fromLine)}\n".utf8)
    }

    /// Asks for the threads of the process behind the socket (answered by its service thread, spec #25 §3).
    public static func stacks(id: Int) -> [UInt8] {
        Array("{\"type\":\"stacks\",\"id\":\(id)}\n".utf8)
    }

    public static func command(id: Int, text: String) -> [UInt8] {
        // The run log's string encoder escapes control characters, so a typed command can never break the framing.
        var line = Array("{\"type\":\"command\",\"id\":\(id),\"text\":".utf8)
        line.appendJSONString(text)
        line += Array("}\n".utf8)
        return line
    }
}

/// A pushed record, `{"type":"record","line":K,"record":{...}}`: the server writes the log line's bytes as they are,
/// as the last member, so the record is read from them by the run log's own parser (docs/runlog.md), not decoded
/// twice.
enum PushedRecord {
    static let prefix = Array("{\"type\":\"record\",\"line\":".utf8)
    static let member = Array(",\"record\":".utf8)

    /// nil when `line` is not a record message in that form (then it is read as any other message). `decoder`: the
    /// connection's, kept across its records.
    static func parse(_ line: [UInt8], decoder: RunLogLineDecoder = RunLogLineDecoder()) -> ServerMessage? {
        guard line.starts(with: prefix) else { return nil }
        var i = prefix.count
        var number = 0
        let digitsStart = i
        while i < line.count, (48...57).contains(line[i]), i - digitsStart < 16 {
            number = number * 10 + Int(line[i] - 48)
            i += 1
        }
        guard i > digitsStart, number <= BridgeProtocol.maxCount, line[i...].starts(with: member) else { return nil }
        i += member.count
        var end = line.count
        while end > i, line[end - 1] == 32 || line[end - 1] == 13 { end -= 1 }
        guard end > i, line[end - 1] == UInt8(ascii: "}") else { return nil }
        do {
            let record = try line[i ..< end - 1].withUnsafeBufferPointer { try decoder.decode($0) }
            return .record(line: number, record)
        } catch {
            return .gap(from: number, to: number + 1, reason: "record of line \(number) unreadable (\(error)); reading it from the log")
        }
    }
}
