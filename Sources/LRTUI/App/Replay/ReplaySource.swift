#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import LRLog
import LRCommand

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
/// Commands (`control`, the `:` prompt) are the replay language of `ReplayCommandParser`; steering is refused:
/// a replay cannot change the run.
public final class ReplaySource: RunSource {
    /// The speeds `<` and `>` step through; `speed xN` sets any N from 1 to 1000.
    public static let speeds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    /// x-units per second at x1.
    public static let stepsPerSecondAtX1 = 20.0

    public let isLive = false
    /// The primary run's folder when it is a log on disk.
    public var runFolder: URL? {
        guard let first = runs.first, first.format == .runLog, FileManager.default.fileExists(atPath: first.source) else { return nil }
        return URL(fileURLWithPath: first.source).deletingLastPathComponent()
    }
    public let runs: [RunData]
    public let axes: [ReplayAxis]
    public let alignment: ReplayAlignment
    /// Monotonic seconds; tests replace it to drive playback.
    public var clock: () -> Double = ReplaySource.monotonicSeconds

    /// Where the cursor is, in x units (fractional while playing).
    public private(set) var position: Double
    public private(set) var playing = false
    /// Playback speed xN: the steps (or x units) the cursor advances per frame at 20 frames a second.
    public private(set) var speed: Int
    /// The events of the primary run in x order (x, event).
    let events: [(x: Int, event: EventRecord)]
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
        let first = axis.firstX ?? 0
        startX = min(first, 0)
        // The replay spans every run, so at the end each is drawn whole.
        endX = max(startX, axes.compactMap(\.lastX).max() ?? 0, events.last?.x ?? 0)
        let span = Double(endX - startX)
        if let s = options.speed {
            speed = min(max(s, ReplayCommandParser.speedRange.lowerBound), ReplayCommandParser.speedRange.upperBound)
        } else {
            speed = Self.speeds.first(where: { Double($0) * Self.stepsPerSecondAtX1 * 30 >= span }) ?? Self.speeds.last!
        }
        position = Double(min(max(options.startAt ?? endX, startX), endX))
        comparison = runs.count > 1 ? Self.compare(runs) : []
        baseStatus = Self.baseStatus(primary, alignment: alignment, endX: endX)
        if options.play {
            _ = control(.play)
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

    public func control(_ command: ReplayCommand) -> String? {
        switch command {
        case .play:
            if Int(position) >= endX { position = Double(startX) }
            playing = true
            lastTick = clock()
        case .pause:
            advance()
            playing = false
        case .step(let n):
            advance()
            playing = false
            for _ in 0..<n {
                guard let next = axes[0].x(after: cursor) else { position = Double(endX); break }
                position = Double(next)
            }
        case .goto(let target):
            goto(target)
        case .seek(let d):
            advance()
            switch d {
            case .steps(let n): moveTo(position + n)
            case .percent(let p):
                let n = max(1, (Double(endX - startX) * abs(p) / 100).rounded())
                moveTo(position + (p < 0 ? -n : n))
            }
        case .event(let next):
            advance()
            if next {
                guard let e = events.first(where: { $0.x > cursor }) else { return "no event after " + where_(cursor) }
                moveTo(Double(e.x))
            } else {
                guard let e = events.last(where: { $0.x < cursor }) else { return "no event before " + where_(cursor) }
                moveTo(Double(e.x))
            }
        case .speed(let change):
            switch change {
            case .up: speed = Self.speeds.first(where: { $0 > speed }) ?? speed
            case .down: speed = Self.speeds.last(where: { $0 < speed }) ?? speed
            case .exactly(let n): speed = n
            }
            advance()
        }
        return nil
    }

    // MARK: playback

    /// The step (or x) the charts are drawn up to.
    public var cursor: Int { Int(position.rounded(.down)) }
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

    private func goto(_ target: ReplayCommand.Target) {
        switch target {
        case .start: moveTo(Double(startX))
        case .end:
            playing = false
            moveTo(Double(endX))
        case .step(let n):
            if alignment == .walltime, let row = runs[0].steps.step.firstIndex(where: { $0 >= n }),
               let x = axes[0].x(step: n, wallTime: runs[0].steps.wallTime[row]) {
                moveTo(Double(x))
            } else {
                moveTo(Double(n))
            }
        }
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
        } else {
            s.step = 0
        }
        if playing {
            s.state = .running
        } else if c >= endX {
            s.state = baseStatus.state
        } else {
            s.state = .paused
        }
        s.message = "· x\(speed)"
        s.details = comparison + baseStatus.details
        inForce(at: c, &s)
        return s
    }

    /// The scheduler and optimizer in force at the cursor: the header's, then each `sched` command up to it, and
    /// the LR the optimizer used at the cursor's step.
    func inForce(at c: Int, _ s: inout LiveStatus) {
        var lo = 0, hi = events.count
        while lo < hi { let mid = (lo + hi) / 2; if events[mid].x <= c { lo = mid + 1 } else { hi = mid } }
        for (x, e) in events[..<lo].reversed() where e.kind == .command {
            guard case .sched(let spec)? = e.command else { continue }
            // As built (its lengths filled in), the same words the live status and the answer used.
            s.scheduler = (e.result?.scheduler ?? spec) + " @" + (alignment == .step ? Format.grouped(x) : where_(x))
            s.schedulerSpec = e.result?.scheduler ?? spec
            break
        }
        if let text = Self.optimizerText(runs[0].header?.config, inForce: s.groups.first?.lr) { s.optimizer = text }
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
        if let base = run.events.lazy.compactMap({ $0.result?.epochBase }).first(where: { (0...1).contains($0) }) {
            s.epochBase = base
        }
        if run.format != .runLog, !run.tags.isEmpty {
            details.append(LiveStatus.Detail("tags", run.tags.joined(separator: " ")))
        }
        s.details = details
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
