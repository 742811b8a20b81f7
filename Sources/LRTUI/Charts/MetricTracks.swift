import Dispatch
import Foundation
import LRLog
import Synchronization

/// A run's own metrics as chart tracks, by name in order of first appearance: one bounded multi-resolution
/// `MetricTrack` each, as the loss has. At most `RunLogLine.maxMetricNames` names (the readers keep no more either),
/// so no stream of made-up names can make a viewer keep a chart for each.
public struct MetricTracks: Sendable {
    public private(set) var names: [String] = []
    public private(set) var tracks: [MetricTrack] = []
    private var index: [String: Int] = [:]
    let retainedBlocks: Int

    public init(retainedBlocks: Int) { self.retainedBlocks = retainedBlocks }

    public var count: Int { names.count }
    public var isEmpty: Bool { names.isEmpty }

    public func track(named name: String) -> MetricTrack? { index[name].map { tracks[$0] } }

    /// The track of `name`, added when new; nil when the table is full.
    private mutating func slot(_ name: String) -> Int? {
        if let i = index[name] { return i }
        guard names.count < RunLogLine.maxMetricNames else { return nil }
        index[name] = names.count
        names.append(name)
        tracks.append(MetricTrack(retainedBlocks: retainedBlocks))
        return names.count - 1
    }

    /// One value. A second value at a metric's last step is left out (a step logs a metric once); an earlier step
    /// branches the track as a rollback does.
    public mutating func append(_ name: String, step: Int, value: Double) {
        guard let i = slot(name) else { return }
        if let last = tracks[i].lastStep, step == last { return }
        tracks[i].append(step: step, value: value)
    }

    /// Values at consecutive steps from `start` (NaN: not logged there), in one pass on a new track.
    public mutating func append(_ name: String, contentsOf values: [Double], startingAt start: Int) {
        values.withUnsafeBufferPointer { b in append(name, count: b.count, startingAt: start) { b[$0] } }
    }

    /// `count` values at consecutive steps from `start`, value k being `value(k)` (NaN: not logged there).
    @inline(__always)
    public mutating func append(_ name: String, count: Int, startingAt start: Int, value: (Int) -> Double) {
        guard let i = slot(name) else { return }
        if let last = tracks[i].lastStep, start <= last {
            for k in 0..<count {
                let v = value(k)
                if !v.isNaN { append(name, step: start + k, value: v) }
            }
        } else {
            tracks[i].append(count: count, startingAt: start, value: value)
        }
    }

    /// Values at increasing steps (a metric logged now and then): built in one pass over the steps they span
    /// (gaps as NaN) unless the gaps are so wide that one value at a time is cheaper.
    public mutating func append(_ name: String, steps: [Int], values: [Double]) {
        guard let first = steps.first, let last = steps.last else { return }
        let increasing = zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 }
        let span = last - first + 1
        if increasing, first >= 0, span <= max(4 * steps.count, steps.count + 100_000),
           track(named: name)?.lastStep.map({ $0 < first }) ?? true {
            var dense = [Double](repeating: .nan, count: span)
            for (s, v) in zip(steps, values) { dense[s - first] = v }
            append(name, contentsOf: dense, startingAt: first)
        } else {
            for (s, v) in zip(steps, values) { append(name, step: s, value: v) }
        }
    }

    /// Tracks of whole Float32 columns, `column[rows]` at consecutive steps from `start` (a replay's metric columns),
    /// built side by side on the machine's cores: each track is a pure function of its column. Then `install` them.
    public static func build(columns: [[Float]], rows: Range<Int>, startingAt start: Int, retainedBlocks: Int) -> [MetricTrack] {
        let out = TrackSlots(count: columns.count, retainedBlocks: retainedBlocks)
        let next = Atomic<Int>(0)
        let workers = max(1, min(columns.count, ProcessInfo.processInfo.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < columns.count else { return }
                columns[i].withUnsafeBufferPointer { col in
                    out.slots[i].append(count: rows.count, startingAt: start) { Double(col[rows.lowerBound + $0]) }
                }
            }
        }
        return out.tracks
    }

    /// Puts a track built by `build` under `name`; false (nothing changed) when `name` already has values or the
    /// table is full.
    @discardableResult
    public mutating func install(_ name: String, _ track: MetricTrack) -> Bool {
        guard let i = slot(name), tracks[i].isEmpty else { return false }
        tracks[i] = track
        return true
    }

    /// Cuts every track before `step` (a rollback).
    public mutating func rollback(to step: Int) {
        for i in tracks.indices { tracks[i].rollback(to: step) }
    }
}

extension MetricTrack {
    /// The last value logged at or before `step` (a metric logged every 100 steps reads the latest one), or nil.
    public func latest(atOrBefore step: Int) -> Double? {
        guard let first = firstStep, step >= first else { return nil }
        return summary(in: first...step)?.last
    }
}

/// Tracks being built on several threads, each written by one thread only (`MetricTracks.build`).
private final class TrackSlots: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<MetricTrack>

    init(count: Int, retainedBlocks: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: MetricTrack(retainedBlocks: retainedBlocks))
    }

    var tracks: [MetricTrack] { Array(slots) }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }
}
