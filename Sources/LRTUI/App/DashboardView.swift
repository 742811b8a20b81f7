import LRLog
import LRCommand

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
        lastLayout = layout
        if metricsView.isOpen { renderMetricsView(into: &buffer, layout: layout); return }
        let range = visibleSteps
        renderHeader(into: &buffer, area: layout.header)
        renderLRChart(into: &buffer, area: layout.lrChart, steps: range)
        let branches = branchRows
        if branches.isEmpty {
            renderLossChart(into: &buffer, area: layout.lossChart, steps: range)
        } else {
            let height = min(branches.count + 3, max(4, layout.lossChart.height / 2))
            let parts = layout.lossChart.split(.vertical, [.fill(1), .length(height)])
            renderLossChart(into: &buffer, area: parts[0], steps: range)
            renderBranches(into: &buffer, area: parts[1], rows: branches)
        }
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

    /// The step every panel shows the primary run at, computed once from the records: its last step live (the
    /// restored one right after a rollback), the cursor in a replay.
    public var viewStep: Int? {
        guard let last = primary.lastStep else { return nil }
        return status.cursor.map { min($0, last) } ?? last
    }

    /// The epoch (0-based) of the view step: the last step record's live, the replay source's at the cursor.
    var viewEpoch: Int {
        if status.cursor == nil, let r = primary.lastStepRecord { return r.epoch }
        return status.epoch
    }

    /// The header's epoch: lrtop's runs count from 1 (`ep 3`); a bridged run is shown as its script numbers epochs,
    /// saying which numbering that is: `ep 3 of 1…10`, `ep 2 of 0…9` (`ep 3 of 1…` when the run's length is unknown).
    var epochText: String {
        guard let base = status.epochBase else { return String(viewEpoch + 1) }
        var text = String(viewEpoch + base) + " of \(base)…"
        if let spe = primary.stepsPerEpoch, spe > 0, let total = viewTotal, total > 0 {
            text += String((total + spe - 1) / spe - 1 + base)
        }
        return text
    }

    /// The total the header, status and gauge count towards: the longest run's when runs are overlaid.
    var viewTotal: Int? {
        guard xAxis == .steps else { return primary.totalSteps }
        return runs.compactMap(\.totalSteps).max()
    }

    /// A track's value at the view step.
    func current(_ track: MetricTrack) -> Double? { primary.value(of: track, at: viewStep) }

    /// Steps drawn as data (up to the replay cursor).
    var dataLimit: ClosedRange<Int>? {
        guard let c = status.cursor else { return nil }
        return Int.min...c
    }

    /// What goes between the state and its message: " · ", unless the message starts with its own "·".
    static func messageSeparator(_ message: String) -> String { message.hasPrefix("·") ? " " : " · " }

    /// The time left of a live run at its recent running rate, or "paused"; nil once it has ended.
    var etaText: String? {
        guard isLive, status.state.isActive, primary.end == nil else { return nil }
        if primary.isPaused { return "paused" }
        return primary.eta.map(Format.duration)
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

    /// The header: what matters most stays when the terminal is narrow. In priority order: the state, the step
    /// and its total, the ETA, the LR, the run's name; then the epoch, the state's message, the badge and the
    /// help hint (decoration) go first.
    func renderHeader(into buffer: inout Buffer, area: Rect) {
        let s = status
        struct Part { var spans: [Span]; var priority: Int; var right: Bool }
        var parts: [Part] = []
        parts.append(Part(spans: [Span(" lrtop ", palette.title.reversed), Span(" ")], priority: 8, right: false))
        parts.append(Part(spans: [Span(primary.name + "  ", palette.title)], priority: 5, right: false))
        parts.append(Part(spans: [Span(stateText(s), stateStyle(s.state))], priority: 1, right: false))
        if let m = s.message, !m.isEmpty {
            parts.append(Part(spans: [Span(Self.messageSeparator(m) + m, stateStyle(s.state).removing(.bold))], priority: 7,
                              right: false))
        }
        var stepText: String
        if xAxis == .steps {
            // Live, overlaid branches run ahead of the run, which waits at the fork: the header counts the run's steps.
            stepText = "step " + Format.grouped((keyMode == .replay ? dataEnd : viewStep) ?? 0)
            if let t = viewTotal { stepText += "/" + Format.grouped(t) }
        } else {
            stepText = "t " + xAxis.text(dataEnd ?? 0)
            if let t = primary.totalSteps { stepText += "/" + xAxis.text(t) }
            stepText += " · step " + Format.grouped(s.step)
        }
        parts.append(Part(spans: [Span(stepText, palette.text)], priority: 2, right: true))
        // The epoch is the first run's at its own step: where the step shown is another (longer) overlaid run's,
        // no epoch goes beside it (the status panel pairs the first run's step and epoch).
        if !(keyMode == .replay && xAxis == .steps && (dataEnd ?? 0) != s.step) {
            parts.append(Part(spans: [Span(" · ep " + epochText, palette.text)], priority: 6, right: true))
        }
        if let eta = etaText { parts.append(Part(spans: [Span(" · ETA " + eta, palette.text)], priority: 3, right: true)) }
        // A paced run says so beside its ETA: the ETA is the pace's, and '>' or ':pace off' goes faster.
        if isLive, let pace = s.pace, primary.end == nil {
            // Given way to the step, ETA and LR when narrow: the status panel's `pace` row says it too.
            parts.append(Part(spans: [Span(" · pace " + Command.paceText(pace), palette.warn)], priority: 6, right: true))
        }
        // The LR of the group the keys act on (the first when they act on all), "lr→NAME" when one is picked.
        let g = selectedGroup.flatMap { primary.groupNames.indices.contains($0) ? $0 : nil }
        let lrValue = s.groups.indices.contains(g ?? 0) ? s.groups[g ?? 0].lr : primary.lr.indices.contains(g ?? 0)
            ? current(primary.lr[g ?? 0]) : nil
        var lrText = " · lr" + (g.map { "→" + primary.groupNames[$0] } ?? "")
        if let v = lrValue { lrText += " " + Format.lr(v) }
        if lrValue == nil && g == nil { lrText = "" }
        if !lrText.isEmpty {
            parts.append(Part(spans: [Span(lrText, selectedGroup == nil ? palette.text : palette.highlight.bold)], priority: 4, right: true))
        }
        parts.append(Part(spans: [Span(" · ? help ", palette.inactive)], priority: 9, right: true))
        func width(_ ps: [Part]) -> Int { ps.reduce(0) { $0 + TextLine($1.spans).width } + 1 }
        while width(parts) > area.width, let worst = parts.indices.max(by: { parts[$0].priority < parts[$1].priority }),
              parts[worst].priority > 5 {
            parts.remove(at: worst)
        }
        // Then the name gives way, down to nothing.
        if width(parts) > area.width, let n = parts.firstIndex(where: { $0.priority == 5 }) {
            let room = TextLine(parts[n].spans).width - (width(parts) - area.width)
            if room >= 6 { parts[n].spans = [Span(primary.name.truncated(toWidth: room - 2) + "  ", palette.title)] }
            else { parts.remove(at: n) }
        }
        let left = TextLine(parts.filter { !$0.right }.flatMap(\.spans))
        let right = TextLine(parts.filter(\.right).flatMap(\.spans))
        left.truncated(toWidth: area.width).render(into: &buffer, at: Position(x: area.x, y: area.y), clip: area)
        if left.width + right.width <= area.width {
            right.render(into: &buffer, at: Position(x: area.right - right.width, y: area.y), clip: area)
        }
    }

    /// The key bar: every binding that has a bar label, as far as it fits.
    func renderFooter(into buffer: inout Buffer, area: Rect) {
        if case .prompt = overlay { return }  // the prompt draws itself there
        if let n = notice {
            let style: Style = n.kind == .error ? palette.error : n.kind == .warning ? palette.warn : palette.highlight
            // A notice is shown whole (a rejection's reason above all): it wraps upwards over the panels (up to 4
            // rows) rather than being cut.
            var lines = Format.wrap(n.text, width: area.width)
            if lines.count > 4 { lines = Array(lines.prefix(4)); lines[3] = lines[3].truncated(toWidth: area.width - 1) + "…" }
            for (i, line) in lines.enumerated() {
                let y = area.y - (lines.count - 1) + i
                let row = Rect(x: area.x, y: y, width: area.width, height: 1)
                buffer.fill(row, style: palette.background)
                buffer.set(string: line, at: Position(x: area.x, y: y), style: style, clip: row)
            }
            return
        }
        var x = area.x
        for (key, label) in keyBarItems(width: area.width) {
            x = buffer.set(string: key, at: Position(x: x, y: area.y), style: palette.highlight.bold, clip: area)
            x = buffer.set(string: " " + label + "  ", at: Position(x: x, y: area.y), style: palette.inactive, clip: area)
        }
    }

    /// The key bar's (key, label) pairs that fit `width`, in table order; help and quit always stay, the others
    /// are dropped from the end of the table first.
    func keyBarItems(width: Int) -> [(key: String, label: String)] {
        if metricsView.isOpen { return metricsKeyBarItems(width: width) }
        var items: [(key: String, label: String, keep: Bool)] = []
        // Once a live run has ended there is nothing to steer: its steering keys leave the bar.
        let ended = isLive && (primary.end != nil || !status.state.isActive)
        for b in KeyMap.bindings(for: keyMode) {
            guard var label = b.barLabel else { continue }
            if ended && b.modes == [.live] { continue }
            if b.action == .togglePause {
                // The key bar names what the key will do now, and why the run waits when it says (a guard's reason).
                if keyMode == .replay { label = status.state == .running ? "pause" : "play" }
                else if status.state == .paused {
                    label = "resume"
                    if let why = status.message, !why.isEmpty { label += " (" + why.truncated(toWidth: 40) + ")" }
                }
            }
            // An attached run goes on in its own process: q leaves it, it does not end it.
            if b.action == .quit, isLive, primary.source?.quitEndsRun == false { label = "detach" }
            let key = b.keys[0] == .space ? "␣" : b.keys[0].description
            items.append((key, label, b.action == .help || b.action == .quit))
        }
        func total() -> Int { items.reduce(0) { $0 + $1.key.cellWidth + 1 + $1.label.cellWidth + 2 } - 2 }
        while total() > width, let drop = items.lastIndex(where: { !$0.keep }) { items.remove(at: drop) }
        return items.map { ($0.key, $0.label) }
    }

    // MARK: panels

    /// What the chart panels share now: the zoom's steps, the replay's data limit, the cursor, the focus.
    func chartWindow(_ steps: ClosedRange<Int>, focused panel: Panel) -> ChartWindow {
        ChartWindow(steps: steps, dataLimit: dataLimit, cursor: chartCursor, xAxis: xAxis, focused: focus == panel)
    }

    func renderLRChart(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>) {
        let first = status.groups.first.map { (lr: $0.lr, held: $0.held) }
            ?? primary.lr.first.flatMap(current).map { (lr: $0, held: false) }
        let panel = LRChartPanel(runs: runs, planned: status.cursor == nil ? status.planned : nil, current: first,
                                 scale: lrScale, selectedGroup: selectedGroup,
                                 window: chartWindow(steps, focused: .lrChart), palette: palette)
        lastPlots[.lrChart] = panel.render(into: &buffer, area: area)
    }

    func renderLossChart(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>) {
        let panel = LossChartPanel(runs: runs, smoothingIndex: smoothingIndex, viewStep: viewStep, scale: lossScale,
                                   window: chartWindow(steps, focused: .lossChart), pinned: pinnedChart, palette: palette)
        lastPlots[.lossChart] = panel.render(into: &buffer, area: area)
    }

    /// The status panel, rebuilt only when a record or a status arrived or a key changed the view since the last
    /// frame (`statusIsStale`), not every frame.
    func renderStatus(into buffer: inout Buffer, area: Rect) {
        if statusIsStale || statusPanel == nil {
            let view = StatusPanel.View(state: Span(stateText(status), stateStyle(status.state)),
                                        step: xAxis == .steps ? viewStep ?? 0 : status.step, epoch: viewEpoch,
                                        xAxis: xAxis, selectedGroup: selectedGroup, smoothingIndex: smoothingIndex,
                                        viewStep: viewStep)
            statusPanel = StatusPanel(run: primary, status: status, view: view, palette: palette)
            statusIsStale = false
        }
        statusPanel?.render(into: &buffer, area: area)
    }

    func renderThroughput(into buffer: inout Buffer, area: Rect, steps: ClosedRange<Int>, compact: Bool) {
        let run = primary
        let block = Block(title: "throughput", titleStyle: palette.title, borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        let inner = block.inner(area)
        guard inner.height >= 1 else { return }
        // A log without a rate (Lightning's, a batch with no tensor) has NaN samples/s: shown as "--", never "nan".
        func rate(_ v: Double?) -> String { v.flatMap { $0.isFinite ? Format.compact($0) : nil } ?? "--" }
        let sNow = rate(run.samplesPerSecNow)
        let sAvg = rate(run.samplesPerSecAverage)
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
            let step = dataEnd ?? 0
            if let total = viewTotal, total > 0 {
                let ratio = min(1, max(0, Double(step) / Double(total)))
                var label = Format.percent(ratio, digits: 0)
                if let eta = etaText { label += " ETA " + eta }
                Gauge(ratio: ratio, label: label, filled: palette.highlight, empty: palette.meterEmpty)
                    .render(into: &buffer, area: row)
            } else {
                buffer.set(string: "total steps unknown", at: Position(x: row.x, y: row.y), style: palette.inactive, clip: row)
            }
        }
    }

    func renderEvents(into buffer: inout Buffer, area: Rect) {
        let block = Block(title: "events", rightTitle: primary.events.isEmpty ? nil : String(primary.events.count),
                          titleStyle: palette.title, rightTitleStyle: palette.inactive, borderStyle: palette.border)
        let events = visibleEvents
        let selected = focus == .events ? selectedEvent : nil
        let keep = max(64, area.height + eventScroll + (selected ?? 0) + 1)
        var list = EventList(events: Array(events.suffix(keep)), palette: palette, scroll: eventScroll, selected: selected)
        list.groups = primary.groupNames
        if xAxis != .steps { list.stepLabel = xAxis.text }
        var framed = block
        if focus == .events { framed.borderStyle = palette.highlight }
        framed.render(list, into: &buffer, area: area)
    }

    // MARK: overlays

    func renderOverlay(into buffer: inout Buffer, area: Rect, layout: DashboardLayout) {
        switch overlay {
        case .none:
            break
        case .help:
            let title = keyMode == .replay ? "replay keys — esc closes" : keyMode == .watch ? "keys (watching a log) — esc closes"
                : "keys — esc closes"
            HelpOverlay(bindings: (metricsView.isOpen ? KeyMap.metricsGrid : []) + KeyMap.bindings(for: keyMode), palette: palette,
                        title: title)
                .render(into: &buffer, area: area.inset(top: 1, bottom: 1))
        case .prompt(let p):
            let rows = p.error == nil ? 1 : 2
            let promptArea = Rect(x: area.x, y: area.bottom - rows, width: area.width, height: rows)
            PromptView(state: p, palette: palette).render(into: &buffer, area: promptArea)
        case .findLR:
            renderFindLR(into: &buffer, area: area)
        case .schedulerMenu(let m):
            SchedulerMenuView(state: m, palette: palette).render(into: &buffer, area: area.inset(top: 1, bottom: 1))
        case .eventDetail(let e):
            var text = EventList.fullText(e, groups: primary.groupNames, stepLabel: xAxis.text)
            if !e.lrsBefore.isEmpty || !e.lrsAfter.isEmpty {
                text += " — LR before " + e.lrsBefore.map(Format.lr).joined(separator: ", ")
                    + ", after " + e.lrsAfter.map(Format.lr).joined(separator: ", ")
            }
            let width = min(area.width - 4, 100)
            let lines = Format.wrap(text, width: width - 4)
            let box = area.centered(width: width, height: min(area.height - 2, lines.count + 3))
            Clear(style: palette.background).render(into: &buffer, area: box)
            Block(title: "event — any key closes", titleStyle: palette.title, borderStyle: palette.highlight)
                .render(Paragraph(lines.map { TextLine(" " + $0, EventList.style(e.kind, palette)) } + [TextLine("")]),
                        into: &buffer, area: box)
        case .confirmQuit:
            ConfirmDialog(message: Self.quitQuestion, palette: palette).render(into: &buffer, area: area)
            buffer.fill(layout.footer, style: palette.background)
            buffer.set(string: Self.quitQuestion, at: Position(x: layout.footer.x, y: layout.footer.y), style: palette.warn.bold,
                       clip: layout.footer)
        }
    }
}
