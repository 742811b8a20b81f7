/// Final and best metrics of a run, for `lrtop replay --summary` and the replay's comparison: a pure function of
/// the run's data.
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
