import LRLog

// A run's series by name, for the metrics grid and the chart cursor: the built-in tracks under the names
// `MetricSource` gives them (an import's own tag names), then the run's own metrics.
extension RunModel {
    /// Every series that holds a value, by name: the built-in ones, then the run's own metrics in order of first
    /// appearance; an import's in the order of its file's tags.
    public var namedSeries: [(name: String, source: MetricSource)] {
        var builtIn: [MetricSource] = []
        if Self.hasValue(loss) { builtIn.append(.loss) }
        for g in lr.indices where Self.hasValue(lr[g]) { builtIn.append(.lr(g)) }
        if Self.hasValue(gradNorm) { builtIn.append(.gradNorm) }
        if Self.hasValue(samplesPerSec) { builtIn.append(.samplesPerSec) }
        if evalLoss.values.contains(where: { $0.isFinite }) { builtIn.append(.evalLoss) }
        if evalAccuracy.values.contains(where: { $0.isFinite }) { builtIn.append(.evalAccuracy) }
        guard let imported = importedNames else {
            let groups = groupNames
            let names = builtIn.map { MetricSource.builtInName($0, groups: groups) }
            return zip(names, builtIn).map { ($0, $1) }
                + zip(ExportNames.unique(metrics.names, besides: names), metrics.names).map { ($0, MetricSource.own($1)) }
        }
        let own = metrics.names.map { (name: $0, source: MetricSource.own($0)) }
        var byName: [String: MetricSource] = [:]
        for b in builtIn { if let n = MetricSource.importedName(b, mapping: imported.mapping) { byName[n] = b } }
        for o in own { byName[o.name] = o.source }
        var seen = Set<String>()
        var out: [(name: String, source: MetricSource)] = []
        for n in imported.order + own.map(\.name) {
            if let source = byName[n], seen.insert(n).inserted { out.append((n, source)) }
        }
        return out
    }

    private static func hasValue(_ track: MetricTrack) -> Bool {
        guard let first = track.firstStep, let last = track.lastStep, first <= last else { return false }
        return track.summary(in: first...last) != nil
    }

    /// What a chart draws for a series.
    public func chartSource(_ source: MetricSource) -> (any ColumnSource)? {
        switch source {
        case .loss: return loss
        case .lr(let g): return lr.indices.contains(g) ? lr[g] : nil
        case .gradNorm: return gradNorm
        case .samplesPerSec: return samplesPerSec
        case .evalLoss: return evalLoss
        case .evalAccuracy: return evalAccuracy
        case .own(let name): return metrics.track(named: name)
        }
    }

    /// The series' last value at or before `step` (a metric logged every 100 steps reads the latest), or nil.
    public func value(_ source: MetricSource, atOrBefore step: Int) -> Double? {
        func track(_ t: MetricTrack?) -> Double? { t?.latest(atOrBefore: step) }
        switch source {
        case .loss: return track(loss)
        case .lr(let g): return track(lr.indices.contains(g) ? lr[g] : nil)
        case .gradNorm: return track(gradNorm)
        case .samplesPerSec: return track(samplesPerSec)
        case .evalLoss: return evalLoss.points(in: Int.min...step).last?.value
        case .evalAccuracy: return evalAccuracy.points(in: Int.min...step).last?.value
        case .own(let name): return track(metrics.track(named: name))
        }
    }

    /// The source of the series named `name`, or nil.
    public func source(named name: String) -> MetricSource? {
        namedSeries.first { $0.name == name }?.source
    }
}
