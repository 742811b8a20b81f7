import LRLog

// Drawing the dashboard: header, LR chart, loss chart, status, throughput, events, key bar, overlays.
extension Dashboard {
    /// Draws the whole screen into the buffer (its area is the terminal).
    public func render(into buffer: inout Buffer) {
        let area = buffer.area
        buffer.fill(area, style: palette.background)
        guard let layout = DashboardLayout(area: area) else {
            TooSmallMessage(required: Self.minimumSize, actual: (area.width, area.height), style: palette.warn.bold)
                .render(into: &buffer, area: area)
            return
        }
        let range = visibleSteps
        renderHeader(into: &buffer, area: layout.header)
        renderLRChart(into: &buffer, area: layout.lrChart, steps: range)
        renderLossChart(into: &buffer, area: layout.lossChart, steps: range)
        renderStatus(into: &buffer, area: layout.status)
        renderThroughput(into: &buffer, area: layout.throughput, steps: range, compact: layout.isCompact)
        renderEvents(into: &buffer, area: layout.events)
        renderFooter(into: &buffer, area: layout.footer)
        renderOverlay(into: &buffer, area: area, layout: layout)
    }

    /// The last step drawn: the replay cursor, else the last step of any run.
    var dataEnd: Int? {
        let ends = runs.compactMap(\.lastStep)
        guard let end = ends.max() else { return nil }
        if let c = status.cursor { return min(end, c) }
        return end
    }

    var plannedEnd: Int? {
        guard status.cursor == nil, let p = status.planned, !p.lrs.isEmpty else { return nil }
        return p.lastStep
    }

    /// The steps across the charts for the current zoom.
    public var visibleSteps: ClosedRange<Int> {
        let first = runs.compactMap(\.firstStep).min() ?? 0
        let end = dataEnd
        let planned = plannedEnd
        var lo: Int, hi: Int
        switch zoom {
        case .run:
            lo = min(first, 0)
            let last = end ?? lo
            let ahead = max(20, (last - lo) / 4)
            hi = max(last, min(planned ?? last, last + ahead))
            if end == nil { hi = max(hi, min(planned ?? primary.totalSteps ?? 100, 100)) }
        case .full:
            lo = min(first, 0)
            hi = max(end ?? 0, planned ?? 0, primary.totalSteps ?? 0)
        case .last(let n):
            let last = end ?? 0
            lo = max(min(first, last), last - n + 1)
            hi = max(last, min(planned ?? last, last + n / 4))
        }
        if hi <= lo { hi = lo + 1 }
        return lo...hi
    }

    /// A track's value at the replay cursor, or its last value.
    func current(_ track: MetricTrack) -> Double? {
        if let c = status.cursor { return track.value(at: c) }
        return track.lastValue
    }

    /// The last evaluation at or before the replay cursor.
    var currentEval: (step: Int, loss: Double, accuracy: Double)? {
        let limit = status.cursor ?? Int.max
        if status.cursor == nil, let e = status.lastEval ?? primary.lastEval { return (e.step, e.loss, e.accuracy) }
        guard let l = primary.evalLoss.points(in: Int.min...limit).last else { return nil }
        let acc = primary.evalAccuracy.points(in: l.step...l.step).last?.value ?? .nan
        return (l.step, l.value, acc)
    }

    /// Steps drawn as data (up to the replay cursor).
    var dataLimit: ClosedRange<Int>? {
        guard let c = status.cursor else { return nil }
        return Int.min...c
    }

    // MARK: header and footer

    func stateStyle(_ state: RunPhase) -> Style {
        switch state {
        case .starting: return palette.inactive.bold
        case .running: return palette.ok.bold
        case .paused: return palette.warn.bold
        case .finished: return palette.highlight.bold
        case .stopped: return palette.inactive.bold
        case .diverged, .failed: return palette.error
        }
    }

    func stateText(_ s: LiveStatus) -> String {
        let word: String
        switch s.state {
        case .starting: word = "○ starting"
        case .running: word = "● running"
        case .paused: word = "❚❚ paused"
        case .finished: word = "✓ finished"
        case .stopped: word = "■ stopped"
        case .diverged: word = "✗ diverged"
        case .failed: word = "✗ failed"
        }
        if isLive { return word }
        return (keyMode == .watch ? "◉ watching · " : "▶ replay · ") + word.split(separator: " ").dropFirst().joined(separator: " ")
    }

    func renderHeader(into buffer: inout Buffer, area: Rect) {
        let s = status
        var left = TextLine([Span(" lrtop ", palette.title.reversed), Span(" ")])
        left.spans.append(Span(primary.name, palette.title))
        left.spans.append(Span("  "))
        left.spans.append(Span(stateText(s), stateStyle(s.state)))
        if let m = s.message, !m.isEmpty { left.spans.append(Span(" " + m, stateStyle(s.state).removing(.bold))) }
        var right: [Span] = []
        var stepText: String
        if xAxis == .steps {
            stepText = "step " + Format.grouped(dataEnd ?? s.step)
            if let t = primary.totalSteps { stepText += "/" + Format.grouped(t) }
        } else {
            stepText = "t " + xAxis.text(dataEnd ?? 0)
            if let t = primary.totalSteps { stepText += "/" + xAxis.text(t) }
            stepText += " · step " + Format.grouped(s.step)
        }
        right.append(Span(stepText, palette.text))
        right.append(Span(" · ep " + String(s.epoch + 1), palette.text))
        if let eta = primary.eta, s.state.isActive, isLive { right.append(Span(" · ETA " + Format.duration(eta), palette.text)) }
        right.append(Span(" · lr→" + (selectedGroup.map { primary.groupNames.indices.contains($0) ? primary.groupNames[$0] : "all" } ?? "all"),
                          selectedGroup == nil ? palette.inactive : palette.highlight.bold))
        right.append(Span(" · ? help ", palette.inactive))
        let rightLine = TextLine(right)
        let leftRoom = area.width - rightLine.width - 1
        if leftRoom >= 20 {
            left.truncated(toWidth: leftRoom).render(into: &buffer, at: Position(x: area.x, y: area.y), clip: area)
            rightLine.render(into: &buffer, at: Position(x: area.right - rightLine.width, y: area.y), clip: area)
        } else {
            left.truncated(toWidth: area.width).render(into: &buffer, at: Position(x: area.x, y: area.y), clip: area)
        }
    }

    /// The key bar: every binding that has a bar label, as far as it fits.
    func renderFooter(into buffer: inout Buffer, area: Rect) {
        if case .prompt = overlay { return }  // the prompt draws itself there
        if let n = notice {
            let style: Style = n.kind == .error ? palette.error : n.kind == .warning ? palette.warn : palette.highlight
            buffer.set(string: n.text.truncated(toWidth: area.width), at: Position(x: area.x, y: area.y), style: style, clip: area)
            return
        }
        var x = area.x
        for b in KeyMap.bindings(for: keyMode) {
            guard let label = b.barLabel else { continue }
            let key = b.keys[0] == .space ? "␣" : b.keys[0].description
            let w = key.cellWidth + 1 + label.cellWidth + 2
            if x + w > area.right { break }
            x = buffer.set(string: key, at: Position(x: x, y: area.y), style: palette.highlight.bold, clip: area)
            x = buffer.set(string: " " + label + "  ", at: Position(x: x, y: area.y), style: palette.inactive, clip: area)
        }
    }

    // MARK: charts

    func markers(for run: RunModel, steps: ClosedRange<Int>) -> [ChartMarker] {
        run.events.compactMap { e in
            guard steps.contains(e.step), dataLimit.map({ $0.contains(e.step) }) ?? true else { return nil }
            switch e.kind {
            case .command: return ChartMarker(step: e.step, style: palette.marker)
            case .guardTrip: return ChartMarker(step: e.step, style: palette.warn.bold, symbol: "!")
            case .rollback: return ChartMarker(step: e.step, style: palette.marker, symbol: "↺")
            default: return nil
            }
        }
    }

    func renderLRChart(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>) {
        let names = primary.groupNames
        var title = "learning rate"
        if lrScale == .log { title += " (log)" }
        var rightTitle = ""
        if let g = primary.status.groups.first {
            rightTitle = Format.lr(g.lr) + (g.held ? " held" : "")
        } else if let t = primary.lr.first, let v = current(t) {
            rightTitle = Format.lr(v)
        }
        let block = Block(title: title, rightTitle: rightTitle, titleStyle: palette.title, rightTitleStyle: palette.highlight,
                          borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        let inner = block.inner(area)
        var series: [ChartSeries] = []
        let limit = dataLimit
        // Ghost branches (rolled back), then overlaid runs, then the planned schedule, then the primary run on top.
        for track in primary.lr { for ghost in track.ghostSources { series.append(ChartSeries(name: "ghost", source: ghost, style: palette.inactive.dim)) } }
        for (i, run) in runs.enumerated().dropFirst() {
            for (g, track) in run.lr.enumerated() {
                series.append(ChartSeries(name: "\(run.name) \(g)", source: track, style: palette.run(i), steps: limit))
            }
        }
        if let p = status.planned, status.cursor == nil {
            for lrs in p.lrs where !lrs.isEmpty {
                let planned = PointSeries(start: p.fromStep, values: lrs)
                series.append(ChartSeries(name: "planned", source: planned, style: palette.planned))
            }
        }
        for (g, track) in primary.lr.enumerated() {
            var style = palette.group(g)
            if let sel = selectedGroup, sel == g { style = style.bold }
            series.append(ChartSeries(name: names.indices.contains(g) ? names[g] : "g\(g + 1)", source: track,
                                      style: style, steps: limit))
        }
        var legend: [(String, Style)] = []
        if runs.count > 1 {
            legend = runs.enumerated().map { i, r in (r.name, i == 0 ? palette.group(0) : palette.run(i)) }
        } else if names.count > 1 {
            legend = names.enumerated().map { g, n in (n, palette.group(g)) }
        }
        var chart = LineChart(series: series, markers: markers(for: primary, steps: steps), steps: steps, scale: lrScale,
                              axisStyle: palette.border, labelStyle: palette.axis, legend: legend)
        if xAxis != .steps { chart.xLabel = xAxis.label }
        chart.render(into: &buffer, area: inner)
    }

    func renderLossChart(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>) {
        let w = smoothingWeight
        var right: [String] = []
        if w > 0 { right.append("smooth " + Format.trimZeros(Format.fixed(w, 2))) }
        if let v = current(primary.smoothed[smoothingIndex]) ?? current(primary.loss) {
            right.append(Format.metric(v))
        }
        if let e = currentEval {
            right.append("val " + Format.metric(e.loss) + " acc " + Format.percent(e.accuracy))
        }
        let block = Block(title: "loss" + (lossScale == .log ? " (log)" : ""), rightTitle: right.joined(separator: " · "),
                          titleStyle: palette.title, rightTitleStyle: palette.smooth, borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        let inner = block.inner(area)
        let limit = dataLimit
        var series: [ChartSeries] = []
        for ghost in primary.loss.ghostSources { series.append(ChartSeries(name: "ghost", source: ghost, style: palette.inactive.dim)) }
        for (i, run) in runs.enumerated().dropFirst() {
            let track = w > 0 ? run.smoothed[smoothingIndex] : run.loss
            series.append(ChartSeries(name: run.name, source: track, style: palette.run(i), steps: limit))
        }
        series.append(ChartSeries(name: "loss", source: primary.loss, style: w > 0 ? palette.loss : palette.smooth, steps: limit))
        if w > 0 {
            series.append(ChartSeries(name: "smoothed", source: primary.smoothed[smoothingIndex], style: palette.smooth, steps: limit))
        }
        var points: [ChartPoint] = []
        let evalRange = limit.map { $0.clamped(to: steps) } ?? steps
        for p in primary.evalLoss.points(in: evalRange) {
            points.append(ChartPoint(step: p.step, value: p.value, style: palette.valPoint))
        }
        var legend: [(String, Style)] = []
        if runs.count > 1 {
            legend = runs.enumerated().map { i, r in (r.name, i == 0 ? palette.smooth : palette.run(i)) }
        } else if !primary.evalLoss.isEmpty {
            legend = [("train", palette.smooth), ("val ●", palette.valPoint)]
        }
        var chart = LineChart(series: series, points: points, markers: markers(for: primary, steps: steps), steps: steps,
                              scale: lossScale, axisStyle: palette.border, labelStyle: palette.axis, legend: legend)
        if xAxis != .steps { chart.xLabel = xAxis.label }
        chart.render(into: &buffer, area: inner)
    }

    // MARK: panels

    func statusItems() -> [(key: String, value: [Span])] {
        let s = status
        let run = primary
        var items: [(key: String, value: [Span])] = []
        var state = [Span(stateText(s), stateStyle(s.state))]
        if let m = s.message, !m.isEmpty { state.append(Span(" " + m, palette.inactive)) }
        items.append(("state", state))
        if let end = run.end {
            items.append(("end", [Span(end.reason.rawValue, end.reason == .completed ? palette.ok : palette.warn),
                                  Span(end.message.map { " " + $0 } ?? "", palette.inactive)]))
        }
        let step = xAxis == .steps ? dataEnd ?? s.step : s.step
        // Step and epoch share a line so the panel fits 80×24: "400 / 1,000 40% · ep 3 100/100".
        var stepSpans = [Span(Format.grouped(step), palette.highlight)]
        if xAxis == .steps, let t = run.totalSteps, t > 0 {
            stepSpans.append(Span(" / " + Format.grouped(t) + " " + Format.percent(Double(step) / Double(t), digits: 0), palette.text))
        }
        stepSpans.append(Span(" · ep ", palette.inactive))
        stepSpans.append(Span(String(s.epoch + 1), palette.highlight))
        if let spe = run.stepsPerEpoch, spe > 0 {
            let inEpoch = max(0, step - s.epoch * spe)
            stepSpans.append(Span(" \(min(inEpoch, spe))/\(spe)", palette.inactive))
        }
        items.append(("step", stepSpans))
        if let c = s.cursor { items.append(("cursor", [Span(xAxis.text(c), palette.highlight)])) }
        // LR per group.
        let groups = s.groups
        let lrs = run.lr.compactMap { current($0) }
        if groups.isEmpty, !lrs.isEmpty {
            for (g, v) in lrs.enumerated() {
                items.append((lrs.count == 1 ? "lr" : "lr " + (run.groupNames.indices.contains(g) ? run.groupNames[g] : "g\(g + 1)"),
                              [Span(Format.lr(v), palette.group(g))]))
            }
        } else {
            for (g, grp) in groups.enumerated() {
                let key = (selectedGroup == g ? "▸" : "") + (groups.count == 1 ? "lr" : "lr " + grp.name)
                var v = [Span(Format.lr(grp.lr), palette.group(g).bold)]
                if grp.held { v.append(Span(" HELD", palette.warn.bold)) }
                if let n = grp.note, !n.isEmpty { v.append(Span(" " + n, palette.inactive)) }
                items.append((key, v))
            }
        }
        if !s.scheduler.isEmpty { items.append(("sched", [Span(s.scheduler, palette.text)])) }
        if let l = s.cursor == nil ? run.lastStepRecord?.loss : current(run.loss) {
            var v = [Span(Format.metric(l), l.isFinite ? palette.text : palette.error)]
            if smoothingWeight > 0, let sm = current(run.smoothed[smoothingIndex]) {
                v.append(Span("  smooth " + Format.metric(sm), palette.smooth))
            }
            items.append(("loss", v))
        }
        if let e = currentEval {
            items.append(("eval", [Span(Format.metric(e.loss), palette.valPoint),
                                   Span(" acc " + Format.percent(e.accuracy), palette.accPoint),
                                   Span(" @" + Format.grouped(e.step), palette.inactive)]))
        }
        if let g = (s.cursor == nil ? s.gradNorm : nil) ?? current(run.gradNorm) {
            items.append(("grad", [Span(Format.metric(g), g.isFinite ? palette.text : palette.error)]))
        }
        if !s.optimizer.isEmpty { items.append(("optim", [Span(s.optimizer, palette.text)])) }
        for d in s.details { items.append((d.key, [Span(d.value, palette.text)])) }
        return items
    }

    func renderStatus(into buffer: inout Buffer, area: Rect) {
        let block = Block(title: "status", titleStyle: palette.title, borderStyle: palette.border)
        block.render(KeyValueList(items: statusItems(), keyStyle: palette.inactive), into: &buffer, area: area)
    }

    func renderThroughput(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>, compact: Bool) {
        let run = primary
        let block = Block(title: "throughput", titleStyle: palette.title, borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        let inner = block.inner(area)
        guard inner.height >= 1 else { return }
        let sNow = run.samplesPerSecNow.map(Format.compact) ?? "--"
        let sAvg = run.samplesPerSecAverage.map(Format.compact) ?? "--"
        let stNow = run.stepsPerSecNow.map(Format.compact) ?? "--"
        let stAvg = run.stepsPerSecAverage.map(Format.compact) ?? "--"
        var lines: [TextLine] = []
        if compact {
            lines.append(TextLine([Span(sNow, palette.highlight.bold), Span(" samples/s ", palette.inactive),
                                   Span(stNow, palette.highlight.bold), Span(" st/s", palette.inactive),
                                   Span(" avg " + sAvg, palette.inactive)]))
        } else {
            lines.append(TextLine([Span("samples/s ", palette.inactive), Span(sNow, palette.highlight.bold),
                                   Span(" now · " + sAvg + " avg", palette.inactive)]))
            lines.append(TextLine([Span("steps/s   ", palette.inactive), Span(stNow, palette.highlight.bold),
                                   Span(" now · " + stAvg + " avg", palette.inactive)]))
        }
        let textRows = min(lines.count, inner.height)
        Paragraph(Array(lines.prefix(textRows))).render(into: &buffer, area: Rect(x: inner.x, y: inner.y, width: inner.width, height: textRows))
        let gaugeRows = inner.height - textRows >= 2 ? 1 : 0
        let sparkArea = Rect(x: inner.x, y: inner.y + textRows, width: inner.width,
                             height: inner.height - textRows - gaugeRows)
        if !sparkArea.isEmpty {
            let cols = StepColumns(first: steps.lowerBound, last: min(steps.upperBound, dataEnd ?? steps.upperBound),
                                   count: sparkArea.width)
            let values: [Double?] = (0..<cols.count).map { j in
                cols.steps(ofColumn: j).flatMap { run.samplesPerSec.summary(in: $0)?.mean }
            }
            Sparkline(values: values, gradient: palette.throughput, style: palette.highlight).render(into: &buffer, area: sparkArea)
        }
        if gaugeRows == 1 {
            let row = inner.row(inner.height - 1)
            let step = dataEnd ?? status.step
            if let total = run.totalSteps, total > 0 {
                var label = Format.percent(Double(step) / Double(total), digits: 0)
                if let eta = run.eta, status.state.isActive, isLive { label += " ETA " + Format.duration(eta) }
                Gauge(ratio: Double(step) / Double(total), label: label, filled: palette.highlight, empty: palette.meterEmpty)
                    .render(into: &buffer, area: row)
            } else {
                buffer.set(string: "total steps unknown", at: Position(x: row.x, y: row.y), style: palette.inactive, clip: row)
            }
        }
    }

    func renderEvents(into buffer: inout Buffer, area: Rect) {
        let block = Block(title: "events", rightTitle: primary.events.isEmpty ? nil : String(primary.events.count),
                          titleStyle: palette.title, rightTitleStyle: palette.inactive, borderStyle: palette.border)
        var events = primary.events
        if let c = status.cursor { events = events.filter { $0.step <= c } }
        var list = EventList(events: Array(events.suffix(max(64, area.height))), palette: palette)
        if xAxis != .steps { list.stepLabel = xAxis.text }
        block.render(list, into: &buffer, area: area)
    }

    // MARK: overlays

    func renderOverlay(into buffer: inout Buffer, area: Rect, layout: DashboardLayout) {
        switch overlay {
        case .none:
            break
        case .help:
            let title = keyMode == .replay ? "replay keys — esc closes" : keyMode == .watch ? "keys (watching a log) — esc closes"
                : "keys — esc closes"
            HelpOverlay(bindings: KeyMap.bindings(for: keyMode), palette: palette, title: title)
                .render(into: &buffer, area: area.inset(top: 1, bottom: 1))
        case .prompt(let p):
            let rows = p.error == nil ? 1 : 2
            let promptArea = Rect(x: area.x, y: area.bottom - rows, width: area.width, height: rows)
            PromptView(state: p, palette: palette).render(into: &buffer, area: promptArea)
        case .schedulerMenu(let m):
            SchedulerMenuView(state: m, palette: palette).render(into: &buffer, area: area.inset(top: 1, bottom: 1))
        case .confirmQuit:
            ConfirmDialog(message: Self.quitQuestion, palette: palette).render(into: &buffer, area: area)
            buffer.fill(layout.footer, style: palette.background)
            buffer.set(string: Self.quitQuestion, at: Position(x: layout.footer.x, y: layout.footer.y), style: palette.warn.bold,
                       clip: layout.footer)
        }
    }
}
