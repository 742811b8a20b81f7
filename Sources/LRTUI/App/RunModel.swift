import Foundation
import LRCommand
import LRLog

/// The data of one run as the dashboard draws it: bounded-memory tracks per metric, evaluations, events and
/// throughput. Built from records, so live runs and replays fill it the same way. The dashboard holds one per run
/// (the first is the run being steered; others are overlaid).
public final class RunModel {
    public static let smoothingWeights: [Double] = [0, 0.6, 0.9, 0.99]
    public static let maxEvents = 5000
    static let retainedBlocks = 2048

    public let source: (any RunSource)?
    public private(set) var header: RunHeader?
    public private(set) var status: LiveStatus
    public private(set) var lr: [MetricTrack] = []
    public private(set) var loss = MetricTrack(retainedBlocks: RunModel.retainedBlocks)
    /// Smoothed loss per weight of `smoothingWeights` (index 0, weight 0, is the raw loss).
    public private(set) var smoothed: [MetricTrack]
    public private(set) var samplesPerSec = MetricTrack(retainedBlocks: RunModel.retainedBlocks)
    public private(set) var gradNorm = MetricTrack(retainedBlocks: RunModel.retainedBlocks)
    public private(set) var evalLoss = PointSeries()
    public private(set) var evalAccuracy = PointSeries()
    /// The run's own metrics (every numeric key of its records beyond the built-in ones; an import's other tags).
    public internal(set) var metrics = MetricTracks(retainedBlocks: RunModel.retainedBlocks)
    /// An import's names for the built-in series (its tags) and its tags' order; nil: a run log's names.
    public internal(set) var importedNames: (mapping: TagMapping, order: [String])?
    public private(set) var events: [EventRecord] = []
    public internal(set) var lastStepRecord: StepRecord?
    public private(set) var lastEval: EvalRecord?
    public private(set) var end: EndRecord?
    public internal(set) var recordCount = 0
    /// Events received in all (`events` keeps the latest `maxEvents`).
    public private(set) var eventsReceived = 0
    var emas: [DebiasedEMA]
    /// Summaries each track keeps per level (`EnvelopeSeries.retainedBlocks`).
    public private(set) var trackBlocks = RunModel.retainedBlocks
    /// (steps, seconds) of running time counted so far, over the last `rateWindow` seconds: the "now" rate.
    var recent: [(steps: Int, time: Double)] = []
    var recentStart = 0
    /// Steps taken and seconds spent while running (paused time excluded).
    var runningSteps = 0
    var runningTime = 0.0
    /// The last step record's (step, running time).
    var previous: (step: Int, time: Double)?
    /// Wall time the run paused at, while it is paused; the seconds it spent paused before.
    var pausedSince: Double?
    var pausedTotal = 0.0
    /// The ETA's rate: steps per second of running time, averaged with exponentially less weight on older time
    /// (about `etaTimeConstant` seconds), as a debiased sum (steps, weight); steps of records with no time between
    /// them wait in `uncountedSteps`.
    var etaRate: (steps: Double, weight: Double)?
    var uncountedSteps = 0

    public init(source: (any RunSource)?, status: LiveStatus = LiveStatus()) {
        self.source = source
        self.status = status
        smoothed = RunModel.smoothingWeights.map { _ in MetricTrack(retainedBlocks: RunModel.retainedBlocks) }
        emas = RunModel.smoothingWeights.map { DebiasedEMA(weight: $0) }
    }

    /// A model whose tracks keep `retainedBlocks` summaries per level instead of the default 2,048: replays of
    /// long runs keep more, so zooming into any part of the run stays fine-grained.
    public convenience init(source: (any RunSource)?, status: LiveStatus = LiveStatus(), retainedBlocks: Int) {
        self.init(source: source, status: status)
        trackBlocks = max(16, retainedBlocks)
        loss = MetricTrack(retainedBlocks: trackBlocks)
        smoothed = RunModel.smoothingWeights.map { _ in MetricTrack(retainedBlocks: trackBlocks) }
        samplesPerSec = MetricTrack(retainedBlocks: trackBlocks)
        gradNorm = MetricTrack(retainedBlocks: trackBlocks)
        metrics = MetricTracks(retainedBlocks: trackBlocks)
    }

    /// The run's name: the status title, else the header's `name`/`run` config, else "run".
    public var name: String {
        if !status.title.isEmpty { return status.title }
        return header?.config["name"] ?? header?.config["run"] ?? "run"
    }

    /// Group names from the header, the status, or "g1", "g2" ...
    public var groupNames: [String] {
        if let h = header, !h.groups.isEmpty { return h.groups }
        if !status.groups.isEmpty { return status.groups.map(\.name) }
        return (0..<lr.count).map { "g\($0 + 1)" }
    }

    public var lastStep: Int? { lastStepRecord?.step }
    public var firstStep: Int? { loss.firstStep ?? lr.first?.firstStep }
    public var totalSteps: Int? { status.totalSteps ?? header?.totalSteps }
    public var stepsPerEpoch: Int? { status.stepsPerEpoch ?? header.map(\.stepsPerEpoch) }

    /// Polls the source: drains records and refreshes the status. Returns whether anything changed.
    @discardableResult
    public func poll() -> Bool {
        guard let source else { return false }
        let records = source.drain()
        ingest(records)
        let s = source.status()
        let changed = s != status
        status = s
        return changed || !records.isEmpty
    }

    public func setStatus(_ s: LiveStatus) { status = s }

    public func ingest(_ records: [RunRecord]) {
        for r in records { ingest(r) }
    }

    public func ingest(_ record: RunRecord) {
        recordCount += 1
        switch record {
        case .header(let h):
            header = h
        case .step(let s):
            ingest(step: s)
        case .eval(let e):
            evalLoss.append(step: e.step, value: e.loss)
            evalAccuracy.append(step: e.step, value: e.accuracy)
            lastEval = e
            for m in e.metrics { metrics.append(m.name, step: e.step, value: m.value) }
        case .metrics(let m):
            for v in m.metrics { metrics.append(v.name, step: m.step, value: v.value) }
        case .event(let e):
            keep(event: e)
            if let target = Self.rollbackTarget(e) { rollBack(to: target) }
        case .end(let e):
            end = e
        }
    }

    /// Keeps an event in the list (the latest `maxEvents`) and on the running clock, without acting on it: a replay
    /// has drawn a rollback's branches from the steps already (`ingest(run:)`).
    func keep(event e: EventRecord) {
        events.append(e)
        eventsReceived += 1
        noteForRate(event: e)
        if events.count > Self.maxEvents + 500 { events.removeFirst(events.count - Self.maxEvents) }
    }

    /// The step a rollback event went back to, or nil for any other event.
    static func rollbackTarget(_ e: EventRecord) -> Int? {
        switch e.kind {
        case .rollback: return e.result?.rolledBackTo ?? e.step
        case .command, .guardTrip: return e.result?.rolledBackTo
        default: return nil
        }
    }

    /// A rollback, as soon as its event arrives (the run may be paused, with no step to come): the timeline is
    /// cut after `step`, what follows becomes the ghost branch, evaluations of the abandoned branch go, and the
    /// last step is the restored one, so every panel shows the state after the intervention at once.
    func rollBack(to step: Int) {
        guard let last = lastStep, step < last else { return }
        for i in lr.indices { lr[i].rollback(to: step + 1) }
        loss.rollback(to: step + 1)
        for i in smoothed.indices { smoothed[i].rollback(to: step + 1) }
        samplesPerSec.rollback(to: step + 1)
        gradNorm.rollback(to: step + 1)
        metrics.rollback(to: step + 1)
        evalLoss.removeAfter(step)
        evalAccuracy.removeAfter(step)
        if let e = lastEval, e.step > step {
            lastEval = evalLoss.last.map { l in
                EvalRecord(step: l.step, epoch: max(0, l.step - 1) / max(1, stepsPerEpoch ?? 1), loss: l.value,
                           accuracy: evalAccuracy.last?.value ?? .nan, wallTime: e.wallTime)
            }
        }
        for i in emas.indices { emas[i].reset() }
        let spe = max(1, stepsPerEpoch ?? 1)
        lastStepRecord = step <= 0 ? nil : StepRecord(
            step: step, epoch: max(0, step - 1) / spe, lrs: lr.map { $0.value(at: step) ?? .nan },
            loss: loss.value(at: step) ?? .nan, gradNorm: gradNorm.value(at: step) ?? .nan,
            samplesPerSec: samplesPerSec.value(at: step) ?? .nan, wallTime: lastStepRecord?.wallTime ?? 0)
    }

    func ingest(step s: StepRecord) {
        if let last = lastStepRecord, s.step <= last.step {
            // A rollback: the tracks branch; smoothing restarts.
            for i in emas.indices { emas[i].reset() }
        }
        while lr.count < s.lrs.count { lr.append(MetricTrack(retainedBlocks: trackBlocks)) }
        for (g, v) in s.lrs.enumerated() { lr[g].append(step: s.step, value: v) }
        loss.append(step: s.step, value: s.loss)
        for i in emas.indices where i > 0 {
            smoothed[i].append(step: s.step, value: emas[i].add(s.loss))
        }
        samplesPerSec.append(step: s.step, value: s.samplesPerSec)
        gradNorm.append(step: s.step, value: s.gradNorm)
        for m in s.metrics { metrics.append(m.name, step: s.step, value: m.value) }
        lastStepRecord = s
        noteForRate(step: s.step, wallTime: s.wallTime)
    }

    /// Builds the tracks from whole columns at once (replay of a log): `steps` must be consecutive from
    /// `firstStep`. Faster than one record at a time for millions of steps.
    public func ingestColumns(firstStep: Int, lrs: [[Double]], loss lossValues: [Double], samplesPerSec sps: [Double],
                              gradNorm gn: [Double]) {
        while lr.count < lrs.count { lr.append(MetricTrack(retainedBlocks: trackBlocks)) }
        for (g, col) in lrs.enumerated() { lr[g].append(contentsOf: col, startingAt: firstStep) }
        loss.append(contentsOf: lossValues, startingAt: firstStep)
        for i in emas.indices where i > 0 {
            let col = lossValues.map { emas[i].add($0) }
            smoothed[i].append(contentsOf: col, startingAt: firstStep)
        }
        samplesPerSec.append(contentsOf: sps, startingAt: firstStep)
        gradNorm.append(contentsOf: gn, startingAt: firstStep)
        if !lossValues.isEmpty {
            let last = firstStep + lossValues.count - 1
            lastStepRecord = StepRecord(step: last, epoch: status.epoch, lrs: lrs.map { $0.last ?? .nan },
                                        loss: lossValues.last!, gradNorm: gn.last ?? .nan,
                                        samplesPerSec: sps.last ?? .nan, wallTime: 0)
        }
    }

    /// Samples one optimizer step takes (batch size × accumulation steps, from the header); nil when the log does
    /// not say (imported logs).
    public var samplesPerStep: Int? {
        guard let c = header?.config, let b = c["batch_size"].flatMap({ Int($0) }), b > 0 else { return nil }
        return b * max(1, c["accum_steps"].flatMap { Int($0) } ?? 1)
    }

    /// Whether the run is paused now, by its events (or, live, by its status).
    public var isPaused: Bool { pausedSince != nil || (source?.isLive == true && status.state == .paused) }

    /// Steps per second over the last `RunModel.rateWindow` seconds of running time: the rate every figure of the
    /// throughput panel, the header's ETA and the gauge derive from. Zero while paused.
    public var stepsPerSecNow: Double? {
        if isPaused { return lastStepRecord == nil ? nil : 0 }
        guard recent.count > recentStart, let b = recent.last else { return nil }
        let a = recent[recentStart]
        guard b.time > a.time, b.steps > a.steps else { return nil }
        return Double(b.steps - a.steps) / (b.time - a.time)
    }

    /// Steps per second over the whole run's running time (paused time and single steps taken while paused left out).
    public var stepsPerSecAverage: Double? {
        guard runningTime > 0, runningSteps > 0 else { return nil }
        return Double(runningSteps) / runningTime
    }

    /// `stepsPerSecNow` × samples per step; without a batch size, the records' own samples/s.
    public var samplesPerSecNow: Double? {
        if let n = samplesPerStep { return stepsPerSecNow.map { $0 * Double(n) } }
        if isPaused { return lastStepRecord == nil ? nil : 0 }
        return lastStepRecord?.samplesPerSec
    }

    /// `stepsPerSecAverage` × samples per step; without a batch size, the mean of the records' samples/s.
    public var samplesPerSecAverage: Double? {
        if let n = samplesPerStep { return stepsPerSecAverage.map { $0 * Double(n) } }
        guard let first = samplesPerSec.firstStep, let last = samplesPerSec.lastStep else { return nil }
        return samplesPerSec.summary(in: first...last)?.mean
    }

    /// Seconds of running time the ETA's rate weighs most: long enough that a busy second or a few slow steps do
    /// not swing it (20m36s → 11m48s in 20 s), short enough to follow a new pace within a minute.
    public static let etaTimeConstant = 20.0

    /// Steps per second the ETA uses: the running rate smoothed over about `etaTimeConstant` seconds (paused time,
    /// the wait for a fork's branches and the jump to an adopted branch's end left out).
    public var etaStepsPerSec: Double? {
        guard let r = etaRate, r.weight > 0 else { return stepsPerSecNow ?? stepsPerSecAverage }
        return r.steps / r.weight
    }

    /// Seconds until `totalSteps` at the smoothed running rate (`etaStepsPerSec`); nil while paused or unknown.
    public var eta: Double? {
        guard !isPaused, let total = totalSteps, let step = lastStep,
              let rate = etaStepsPerSec, rate > 0 else { return nil }
        return Double(max(0, total - step)) / rate
    }

    // MARK: running time

    /// Seconds of running time the "now" rate spans.
    public static let rateWindow = 5.0

    /// Keeps the running clock: wall time less the paused intervals the events mark (a `pause` however it was
    /// typed, a guard trip that paused; a `resume`).
    func noteForRate(event e: EventRecord) {
        // A fork makes the run wait for its branches until `adopt K` or `drop`: that wait is not running time, and
        // the adopted branch's steps (trained meanwhile) are not the run's rate.
        var forks = false, joins = false
        if e.kind == .command, let c = e.command {
            switch c {
            case .fork: forks = true
            case .adopt, .drop: joins = true
            default: break
            }
        }
        let pauses = (e.kind == .command && e.command == .pause) || (e.kind == .guardTrip && e.result?.paused == true) || forks
        let resumes = (e.kind == .command && e.command == .resume) || joins
        if pauses, pausedSince == nil, e.wallTime.isFinite {
            pausedSince = e.wallTime
        } else if resumes, let since = pausedSince {
            if e.wallTime.isFinite { pausedTotal += max(0, e.wallTime - since) }
            pausedSince = nil
            // The rates go on from the next step, not from the last one before the wait.
            if joins { previous = nil }
        }
    }

    func noteForRate(step: Int, wallTime: Double) {
        guard wallTime.isFinite else { return }
        let t = wallTime - pausedTotal
        defer { previous = (step, t) }
        // A single step taken while paused is not running time.
        guard pausedSince == nil, let prev = previous else { return }
        let dt = t - prev.time
        guard dt >= 0 else { return }
        let taken = step > prev.step ? step - prev.step : 1
        runningSteps += taken
        runningTime += dt
        uncountedSteps += taken
        if dt > 0 {
            // Time-weighted: over any stretch, the sum of steps over the sum of seconds, older seconds fading.
            let keep = exp(-dt / Self.etaTimeConstant)
            let r = etaRate ?? (0, 0)
            etaRate = (r.steps * keep + Double(uncountedSteps) / dt * (1 - keep), r.weight * keep + (1 - keep))
            uncountedSteps = 0
        }
        recent.append((runningSteps, runningTime))
        if recent.count == 1 { recent.insert((runningSteps - (step > prev.step ? step - prev.step : 1), runningTime - dt), at: 0) }
        // Keep the window's span (and at least two entries): entries before `recentStart` are out of it, dropped
        // in bulk now and then so a million steps stay linear.
        while recent.count - recentStart > 2, recent[recentStart + 1].time <= runningTime - Self.rateWindow { recentStart += 1 }
        if recent.count - recentStart > 8192 { recentStart = recent.count - 4096 }
        if recentStart > 4096 { recent.removeFirst(recentStart); recentStart = 0 }
    }
}
