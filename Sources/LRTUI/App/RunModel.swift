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
    public private(set) var events: [EventRecord] = []
    public internal(set) var lastStepRecord: StepRecord?
    public private(set) var lastEval: EvalRecord?
    public private(set) var end: EndRecord?
    public private(set) var recordCount = 0
    var emas: [DebiasedEMA]
    /// Summaries each track keeps per level (`EnvelopeSeries.retainedBlocks`).
    public private(set) var trackBlocks = RunModel.retainedBlocks
    /// Recent (step, wallTime) for the current step rate.
    var recent: [(step: Int, wall: Double)] = []
    var firstWall: (step: Int, wall: Double)?

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
        case .event(let e):
            events.append(e)
            if events.count > Self.maxEvents + 500 { events.removeFirst(events.count - Self.maxEvents) }
        case .end(let e):
            end = e
        }
    }

    func ingest(step s: StepRecord) {
        if let last = lastStepRecord, s.step <= last.step {
            // A rollback: the tracks branch; smoothing restarts.
            for i in emas.indices { emas[i].reset() }
            recent.removeAll()
        }
        while lr.count < s.lrs.count { lr.append(MetricTrack(retainedBlocks: trackBlocks)) }
        for (g, v) in s.lrs.enumerated() { lr[g].append(step: s.step, value: v) }
        loss.append(step: s.step, value: s.loss)
        for i in emas.indices where i > 0 {
            smoothed[i].append(step: s.step, value: emas[i].add(s.loss))
        }
        samplesPerSec.append(step: s.step, value: s.samplesPerSec)
        gradNorm.append(step: s.step, value: s.gradNorm)
        lastStepRecord = s
        if firstWall == nil { firstWall = (s.step, s.wallTime) }
        recent.append((s.step, s.wallTime))
        if recent.count > 64 { recent.removeFirst(recent.count - 32) }
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

    /// Steps per second over the last few records.
    public var stepsPerSecNow: Double? {
        guard let a = recent.first, let b = recent.last, b.wall > a.wall, b.step > a.step else { return nil }
        return Double(b.step - a.step) / (b.wall - a.wall)
    }

    /// Steps per second since the first record.
    public var stepsPerSecAverage: Double? {
        guard let a = firstWall, let b = lastStepRecord, b.wallTime > a.wall, b.step > a.step else { return nil }
        return Double(b.step - a.step) / (b.wallTime - a.wall)
    }

    public var samplesPerSecNow: Double? { lastStepRecord?.samplesPerSec }

    /// Mean samples/s over the whole run.
    public var samplesPerSecAverage: Double? {
        guard let first = samplesPerSec.firstStep, let last = samplesPerSec.lastStep else { return nil }
        return samplesPerSec.summary(in: first...last)?.mean
    }

    /// Seconds until `totalSteps` at the current rate.
    public var eta: Double? {
        guard let total = totalSteps, let step = lastStep, let rate = stepsPerSecNow ?? stepsPerSecAverage, rate > 0
        else { return nil }
        return Double(max(0, total - step)) / rate
    }
}
