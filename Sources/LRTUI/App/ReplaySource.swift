#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LRLog

/// How several replayed runs share the x axis.
public enum ReplayAlignment: String, Sendable, CaseIterable {
    /// Step n of every run at the same x.
    case step
    /// The same time since each run's start at the same x (the x axis counts seconds).
    case walltime
}

/// How a replay opens.
public struct ReplayOptions: Sendable {
    public var alignment: ReplayAlignment
    /// Playback speed level (x1 … x1000); nil: the smallest that plays the whole run in 30 s at most.
    public var speed: Int?
    /// The step (or x) the cursor starts at; nil: the end, with the whole run drawn.
    public var startAt: Int?
    /// Start playing at once.
    public var play: Bool

    public init(alignment: ReplayAlignment = .step, speed: Int? = nil, startAt: Int? = nil, play: Bool = false) {
        self.alignment = alignment; self.speed = speed; self.startAt = startAt; self.play = play
    }
}

/// A replay of runs read from files: the dashboard draws everything up to a cursor that the keys move and that
/// playback advances. The first run is the one the cursor and the status panel follow; the others are overlaid,
/// and the status panel compares their final metrics.
///
/// Speed: at xN the cursor advances N steps per frame at 20 frames per second, that is 20·N steps (or, aligned by
/// wall time, 20·N units of the time axis) per second of playback, whatever frame rate the terminal gets.
/// x1 plays 300 steps in 15 s; x1000 plays a million steps in 50 s.
///
/// Commands (`send`, the `:` prompt): `play`, `pause`, `resume`, `step` (one row forward, pauses),
/// `goto STEP|start|end` or just `STEP`, `seek ±N` or `seek ±N%` (of the run), `event next|prev`,
/// `speed up|down|xN`. Anything else is refused: a replay cannot change the run.
public final class ReplaySource: RunSource {
    public static let speeds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    /// x-units per second at x1.
    public static let stepsPerSecondAtX1 = 20.0

    public let isLive = false
    public let runs: [RunData]
    public let axes: [ReplayAxis]
    public let alignment: ReplayAlignment
    /// Monotonic seconds; tests replace it to drive playback.
    public var clock: () -> Double = ReplaySource.monotonicSeconds

    /// Where the cursor is, in x units (fractional while playing).
    public private(set) var position: Double
    public private(set) var playing = false
    public private(set) var speedIndex: Int
    /// The events of the primary run in x order (x, event).
    let events: [(x: Int, event: EventRecord)]
    /// The primary run's evaluations in x order.
    let evals: [(x: Int, eval: EvalRecord)]
    let startX: Int
    let endX: Int
    private var lastTick: Double?
    private let comparison: [LiveStatus.Detail]
    private let baseStatus: LiveStatus

    /// Runs in order: the first is followed by the cursor. Aligned by wall time only when every run can be
    /// placed (see `ReplayAxis.wallTimeUnit`); else by step.
    public init(runs: [RunData], options: ReplayOptions = ReplayOptions()) {
        precondition(!runs.isEmpty, "a replay needs at least one run")
        // An import's raw series are in its columns already; only their names are shown. Dropping them here frees
        // their memory (about 100 MB for 4 tags × 1M steps) once the caller lets go of its copy.
        self.runs = runs.map { run in
            var r = run
            if !r.scalars.isEmpty { r.scalars = r.scalars.map { ScalarSeries(tag: $0.tag) } }
            return r
        }
        let runs = self.runs
        var alignment = options.alignment
        var axes: [ReplayAxis]
        if alignment == .walltime, let unit = ReplayAxis.wallTimeUnit(for: runs) {
            axes = runs.map { ReplayAxis(run: $0, unit: unit) }
        } else {
            alignment = .step
            axes = runs.map { ReplayAxis(run: $0) }
        }
        self.alignment = alignment
        self.axes = axes
        let axis = axes[0]
        let primary = runs[0]
        events = primary.events.compactMap { e in axis.x(step: e.step, wallTime: e.wallTime).map { ($0, e) } }
            .sorted { $0.x < $1.x }
        evals = primary.evals.compactMap { e in axis.x(step: e.step, wallTime: e.wallTime).map { ($0, e) } }
            .sorted { $0.x < $1.x }
        let first = axis.firstX ?? 0
        startX = min(first, 0)
        // The replay spans every run, so at the end each is drawn whole.
        endX = max(startX, axes.compactMap(\.lastX).max() ?? 0, events.last?.x ?? 0)
        let span = Double(endX - startX)
        if let s = options.speed {
            speedIndex = Self.speeds.lastIndex(where: { $0 <= s }) ?? 0
        } else {
            speedIndex = Self.speeds.firstIndex(where: { Double($0) * Self.stepsPerSecondAtX1 * 30 >= span })
                ?? Self.speeds.count - 1
        }
        position = Double(min(max(options.startAt ?? endX, startX), endX))
        comparison = runs.count > 1 ? Self.compare(runs) : []
        baseStatus = Self.baseStatus(primary, alignment: alignment, endX: endX)
        if options.play {
            _ = send("play")
            lastTick = nil  // playback starts with the first frame, not while the tracks are being built
        }
    }

    // MARK: RunSource

    /// Replays feed the model in bulk (`RunModel.ingest(run:)`); nothing arrives record by record.
    public func drain() -> [RunRecord] { [] }

    public func status() -> LiveStatus {
        advance()
        return statusAtCursor()
    }

    public func send(_ command: String) -> String? {
        let words = command.split(separator: " ").map(String.init)
        guard let verb = words.first?.lowercased() else { return "empty command" }
        let arg = words.count > 1 ? words[1].lowercased() : nil
        if Int(verb) != nil { return goto(verb) }
        switch verb {
        case "play", "resume":
            if Int(position) >= endX { position = Double(startX) }
            playing = true
            lastTick = clock()
        case "pause":
            advance()
            playing = false
        case "step":
            advance()
            playing = false
            let n = arg.flatMap { Int($0) } ?? 1
            guard n > 0 else { return "step takes a positive count: step 10" }
            for _ in 0..<n {
                guard let next = axes[0].x(after: cursor) else { position = Double(endX); break }
                position = Double(next)
            }
        case "goto", "g":
            guard let arg else { return "goto takes a step, start or end: goto 1200" }
            return goto(arg)
        case "start", "home":
            return goto("start")
        case "end":
            return goto("end")
        case "seek":
            guard let arg, let d = seekDistance(arg) else { return "seek takes ±N steps or ±N%: seek +500, seek -10%" }
            advance()
            moveTo(position + d)
        case "event", "events":
            advance()
            switch arg {
            case "next", "n", "+":
                guard let e = events.first(where: { $0.x > cursor }) else { return "no event after " + where_(cursor) }
                moveTo(Double(e.x))
            case "prev", "previous", "p", "-":
                guard let e = events.last(where: { $0.x < cursor }) else { return "no event before " + where_(cursor) }
                moveTo(Double(e.x))
            default: return "event next or event prev"
            }
        case "speed":
            switch arg {
            case "up", "+", "faster": speedIndex = min(Self.speeds.count - 1, speedIndex + 1)
            case "down", "-", "slower": speedIndex = max(0, speedIndex - 1)
            case let a?:
                let digits = a.hasPrefix("x") ? String(a.dropFirst()) : a
                guard let n = Int(digits), n >= 1 else { return "speed up, speed down or speed xN (x1 … x1000)" }
                speedIndex = Self.speeds.lastIndex(where: { $0 <= n }) ?? 0
            case nil: return "speed up, speed down or speed xN (x1 … x1000)"
            }
            advance()
        default:
            return "a replay is read-only: '\(verb)' steers live training (here: play, pause, goto STEP, seek ±N, speed xN)"
        }
        return nil
    }

    // MARK: playback

    /// The step (or x) the charts are drawn up to.
    public var cursor: Int { Int(position.rounded(.down)) }
    public var speed: Int { Self.speeds[speedIndex] }
    public var atEnd: Bool { cursor >= endX }

    /// Moves the cursor by the time passed while playing; stops at the end.
    func advance() {
        guard playing else { return }
        let now = clock()
        let dt = max(0, now - (lastTick ?? now))
        lastTick = now
        position += dt * Double(speed) * Self.stepsPerSecondAtX1
        if position >= Double(endX) {
            position = Double(endX)
            playing = false
        }
    }

    private func moveTo(_ p: Double) {
        position = min(max(p, Double(startX)), Double(endX))
        if playing { lastTick = clock() }
    }

    private func goto(_ arg: String) -> String? {
        switch arg {
        case "start", "home", "begin": moveTo(Double(startX))
        case "end", "last":
            playing = false
            moveTo(Double(endX))
        default:
            guard let n = Int(arg.filter { $0 != "," && $0 != "_" }) else {
                return "goto takes a step, start or end: goto 1200"
            }
            if alignment == .walltime, let row = runs[0].steps.step.firstIndex(where: { $0 >= n }),
               let x = axes[0].x(step: n, wallTime: runs[0].steps.wallTime[row]) {
                moveTo(Double(x))
            } else {
                moveTo(Double(n))
            }
        }
        return nil
    }

    private func seekDistance(_ arg: String) -> Double? {
        var text = Substring(arg)
        var sign = 1.0
        if text.first == "+" { text = text.dropFirst() } else if text.first == "-" { sign = -1; text = text.dropFirst() }
        if text.last == "%" {
            guard let p = Double(text.dropLast()) else { return nil }
            return sign * max(1, (Double(endX - startX) * p / 100).rounded())
        }
        guard let n = Double(text) else { return nil }
        return sign * n
    }

    private func where_(_ x: Int) -> String {
        alignment == .step ? "step \(x)" : XAxis.wallTime(unit: axes[0].unit ?? 1).text(x)
    }

    // MARK: status

    /// What the dashboard's x axis counts for this replay.
    public var xAxis: XAxis { axes[0].unit.map { .wallTime(unit: $0) } ?? .steps }

    func statusAtCursor() -> LiveStatus {
        var s = baseStatus
        let c = cursor
        s.cursor = c
        let run = runs[0]
        if let row = axes[0].row(atOrBefore: c) {
            let cols = run.steps
            s.step = cols.step[row]
            s.epoch = Int(cols.epoch[row])
            let lrs = cols.lrs.map { $0[row] }
            if !lrs.isEmpty, lrs.allSatisfy({ $0.isFinite }) {
                s.groups = lrs.enumerated().map { g, lr in
                    LiveStatus.Group(name: run.groups.indices.contains(g) ? run.groups[g] : "g\(g + 1)", lr: lr)
                }
            }
            let g = Double(cols.gradNorm[row])
            s.gradNorm = g.isFinite ? g : nil
        } else {
            s.step = 0
        }
        var lo = 0, hi = evals.count
        while lo < hi { let mid = (lo + hi) / 2; if evals[mid].x <= c { lo = mid + 1 } else { hi = mid } }
        s.lastEval = lo > 0 ? evals[lo - 1].eval : nil
        if playing {
            s.state = .running
        } else if c >= endX {
            s.state = baseStatus.state
        } else {
            s.state = .paused
        }
        s.message = "· x\(speed)"
        s.details = comparison + baseStatus.details
        return s
    }

    static func baseStatus(_ run: RunData, alignment: ReplayAlignment, endX: Int) -> LiveStatus {
        var s = run.header.map { headerStatus($0, title: run.name) } ?? LiveStatus(title: run.name)
        var details = [LiveStatus.Detail("source", run.format.rawValue + " · " + run.name)]
        if let end = run.end {
            s.state = RunPhase(ended: end.reason)
        } else if run.format == .runLog {
            s.state = .stopped
            details.insert(LiveStatus.Detail("end", "no end record: cut short, or still being written (lrtop watch)"), at: 0)
        } else {
            s.state = .finished
        }
        s.totalSteps = alignment == .step ? (run.header?.totalSteps ?? run.steps.step.last) : endX
        if run.format != .runLog, !run.tags.isEmpty {
            details.append(LiveStatus.Detail("tags", run.tags.joined(separator: " ")))
        }
        s.details = details
        return s
    }

    /// Title, totals, optimizer and scheduler from a run log's header (its config as the user gave it).
    public static func headerStatus(_ h: RunHeader, title: String) -> LiveStatus {
        var s = LiveStatus(title: title)
        s.totalSteps = h.totalSteps
        s.stepsPerEpoch = h.stepsPerEpoch
        let config = h.config
        if let opt = config["optimizer"] {
            var text = opt
            if let lr = config["lr"] { text += " lr=" + lr }
            if let wd = config["weight_decay"] ?? config["wd"], Double(wd) != 0 { text += " wd=" + wd }
            s.optimizer = text
        }
        if let sched = config["scheduler"] ?? config["sched"] { s.scheduler = sched }
        s.groups = h.groups.map { LiveStatus.Group(name: $0, lr: Double(config["lr"] ?? "") ?? .nan) }
        if s.groups.contains(where: { !$0.lr.isFinite }) { s.groups = [] }
        return s
    }

    /// One line per run with its final loss and validation accuracy; the lowest final loss gets a ★.
    static func compare(_ runs: [RunData]) -> [LiveStatus.Detail] {
        let summaries = runs.map(ReplaySummary.init)
        let best = summaries.enumerated().filter { $0.element.finalLoss != nil }
            .min { $0.element.finalLoss! < $1.element.finalLoss! }?.offset
        var out: [LiveStatus.Detail] = []
        for (i, s) in summaries.enumerated() {
            var v = "loss " + (s.finalLoss.map { Format.metric($0) } ?? "--")
            if let a = s.finalAccuracy { v += " · acc " + Format.percent(a) }
            if i == best && runs.count > 1 { v += " ★" }
            let name = s.name.count > 14 ? String(s.name.prefix(13)) + "…" : s.name
            out.append(LiveStatus.Detail(name, v))
        }
        return out
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Final and best metrics of a run, for the `--summary` table and the replay's comparison.
public struct ReplaySummary: Sendable {
    public var name: String
    public var format: RunData.Format
    public var steps: Int
    public var lastStep: Int?
    /// The last finite training loss, and the lowest.
    public var finalLoss: Double?
    public var bestLoss: Double?
    /// Validation: the last and best accuracy, the last and lowest loss.
    public var finalAccuracy: Double?
    public var bestAccuracy: Double?
    public var finalEvalLoss: Double?
    public var bestEvalLoss: Double?
    /// Commands that applied and rollbacks; guard trips; rejected commands.
    public var interventions: Int
    public var guardTrips: Int
    public var rejected: Int
    /// Steps whose loss is NaN or infinite.
    public var nonFiniteLosses: Int
    /// The end record's reason, or nil.
    public var ended: EndReason?

    public init(_ r: RunData) {
        name = r.name
        format = r.format
        steps = r.steps.count
        lastStep = r.steps.step.last
        var best = Float.infinity, final: Float? = nil, bad = 0
        r.steps.loss.withUnsafeBufferPointer { b in
            for v in b {
                if v.isFinite { final = v; if v < best { best = v } } else { bad += 1 }
            }
        }
        finalLoss = final.map(Double.init)
        bestLoss = best.isFinite ? Double(best) : nil
        nonFiniteLosses = bad
        let accs = r.evals.map(\.accuracy).filter { $0.isFinite }
        finalAccuracy = accs.last
        bestAccuracy = accs.max()
        let evalLosses = r.evals.map(\.loss).filter { $0.isFinite }
        finalEvalLoss = evalLosses.last
        bestEvalLoss = evalLosses.min()
        interventions = r.events.filter { $0.kind == .command || $0.kind == .rollback }.count
        guardTrips = r.events.filter { $0.kind == .guardTrip }.count
        rejected = r.events.filter { $0.kind == .error }.count
        ended = r.end?.reason
    }
}

extension ReplaySource {
    /// Summaries per level for a replayed run of `rows` steps: every step while the run has at most 131,072 steps
    /// (every chart column exact at any zoom); beyond, the last 65,536 steps exactly and the rest in blocks of 8
    /// (a million steps: about 10 MB per track instead of 55).
    public static func retainedBlocks(forRows rows: Int) -> Int {
        min(max(2048, rows / 2 + 1), 65_536)
    }

    /// The dashboard of this replay: one model per run, each built in bulk from its columns; the first follows
    /// the cursor, the others are overlaid in their own colours with a legend.
    public func makeDashboard(theme: Theme = .builtinDefault, depth: ColorDepth = .truecolor,
                              themeStore: ThemeStore? = nil) -> Dashboard {
        var models: [RunModel] = []
        for (i, run) in runs.enumerated() {
            let model: RunModel
            let blocks = Self.retainedBlocks(forRows: axes[i].count)
            if i == 0 {
                model = RunModel(source: self, status: statusAtCursor(), retainedBlocks: blocks)
            } else {
                model = RunModel(source: nil, status: Self.baseStatus(run, alignment: alignment, endX: axes[i].lastX ?? 0),
                                 retainedBlocks: blocks)
            }
            model.ingest(run: run, axis: axes[i])
            models.append(model)
        }
        let dashboard = Dashboard(runs: models, theme: theme, depth: depth, themeStore: themeStore)
        dashboard.xAxis = xAxis
        return dashboard
    }
}
