import LRLog

/// What the dashboard's chart panels share, as ratatui's `Chart` takes its axes: the steps across the chart, where
/// data stops (a replay's cursor), the chart cursor, what the x axis counts, and whether the panel has the focus.
public struct ChartWindow: Sendable {
    public var steps: ClosedRange<Int>
    /// Steps drawn as data (nil: all of them; a replay: up to its cursor).
    public var dataLimit: ClosedRange<Int>?
    /// The chart cursor's step (a focused chart's ←/→, a click).
    public var cursor: Int?
    public var xAxis: XAxis
    public var focused: Bool

    public init(steps: ClosedRange<Int>, dataLimit: ClosedRange<Int>? = nil, cursor: Int? = nil, xAxis: XAxis = .steps,
                focused: Bool = false) {
        self.steps = steps; self.dataLimit = dataLimit; self.cursor = cursor; self.xAxis = xAxis; self.focused = focused
    }

    /// The cursor when it is inside the chart.
    var visibleCursor: Int? { cursor.flatMap { steps.contains($0) ? $0 : nil } }

    /// The events in the window as markers (a command ▾, a guard trip !, a rollback ↺), then the cursor's line.
    func markers(_ events: [EventRecord], palette: Palette) -> [ChartMarker] {
        var out: [ChartMarker] = events.compactMap { e in
            guard steps.contains(e.step), dataLimit.map({ $0.contains(e.step) }) ?? true else { return nil }
            switch e.kind {
            case .command: return ChartMarker(step: e.step, style: palette.marker)
            case .guardTrip: return ChartMarker(step: e.step, style: palette.warn.bold, symbol: "!")
            case .rollback: return ChartMarker(step: e.step, style: palette.marker, symbol: "↺")
            default: return nil
            }
        }
        if let c = visibleCursor { out.append(ChartMarker(step: c, style: palette.highlight.bold, symbol: "┃")) }
        return out
    }

    /// A chart over the window, its x labels in the axis's unit.
    func chart(series: [ChartSeries], points: [ChartPoint] = [], markers: [ChartMarker], scale: AxisScale,
               legend: [(String, Style)], palette: Palette) -> LineChart {
        var chart = LineChart(series: series, points: points, markers: markers, steps: steps, scale: scale,
                              axisStyle: palette.border, labelStyle: palette.axis, legend: legend)
        if xAxis != .steps { chart.xLabel = xAxis.label; chart.preciseXLabel = nil }
        return chart
    }
}

extension RunModel {
    /// A track's value at the view step (its last value when there is none).
    func value(of track: MetricTrack, at viewStep: Int?) -> Double? {
        guard let v = viewStep else { return track.lastValue }
        return track.value(at: v)
    }

    /// The last evaluation at or before the view step.
    func eval(atOrBefore viewStep: Int?) -> (step: Int, loss: Double, accuracy: Double)? {
        guard let l = evalLoss.points(in: Int.min...(viewStep ?? Int.max)).last else { return nil }
        let acc = evalAccuracy.points(in: l.step...l.step).last?.value ?? .nan
        return (l.step, l.value, acc)
    }
}
