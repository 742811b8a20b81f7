import LRLog

/// The status panel: `key  value` rows of a run at the view step: its state and how it ended, the step and epoch,
/// each group's LR (held, overridden, warming up), the scheduler, loss, evaluation, gradient norm, the GPU and the
/// ranks' step times when the records give them, optimizer and the source's own details. Built from the records and the live status when either changes, drawn every frame.
public struct StatusPanel: Widget {
    public var rows: [(key: String, value: [Span])]
    public var palette: Palette

    public init(rows: [(key: String, value: [Span])], palette: Palette) {
        self.rows = rows; self.palette = palette
    }

    /// What the rows read at the view step.
    public struct View {
        /// The state as the header shows it (`● running`, `▶ replay · paused`) and its style.
        public var state: Span
        /// The step and epoch every panel shows (the view step live, the cursor's in a replay).
        public var step: Int
        public var epoch: Int
        public var xAxis: XAxis
        /// The group the LR keys act on (marked ▸).
        public var selectedGroup: Int?
        /// Index into `RunModel.smoothingWeights`.
        public var smoothingIndex: Int
        /// The step the tracks are read at (nil: their last values).
        public var viewStep: Int?

        public init(state: Span, step: Int, epoch: Int, xAxis: XAxis = .steps, selectedGroup: Int? = nil,
                    smoothingIndex: Int = 1, viewStep: Int? = nil) {
            self.state = state; self.step = step; self.epoch = epoch; self.xAxis = xAxis
            self.selectedGroup = selectedGroup; self.smoothingIndex = smoothingIndex; self.viewStep = viewStep
        }
    }

    /// The rows of `run` as `status` and `view` describe it.
    public init(run: RunModel, status s: LiveStatus, view: View, palette: Palette) {
        self.palette = palette
        var items: [(key: String, value: [Span])] = []
        var state = [view.state]
        if let m = s.message, !m.isEmpty { state.append(Span(Dashboard.messageSeparator(m) + m, palette.inactive)) }
        items.append(("state", state))
        if let end = run.end {
            items.append(("end", [Span(end.reason.rawValue, end.reason == .completed ? palette.ok : palette.warn),
                                  Span(end.message.map { " " + $0 } ?? "", palette.inactive)]))
        }
        let step = view.step, epoch = view.epoch
        // Step and epoch share a line so the panel fits 80×24: "400 / 1,000 40% · ep 3 100/100".
        var stepSpans = [Span(Format.grouped(step), palette.highlight)]
        if view.xAxis == .steps, let t = run.totalSteps, t > 0 {
            stepSpans.append(Span(" / " + Format.grouped(t) + " " + Format.percent(min(1, Double(step) / Double(t)), digits: 0), palette.text))
        }
        stepSpans.append(Span(" · ep ", palette.inactive))
        stepSpans.append(Span(String(epoch + (s.epochBase ?? 1)), palette.highlight))
        if let spe = run.stepsPerEpoch, spe > 0 {
            // Steps into the epoch: live, the run's own count when it gives one (a bridged run's `epoch_step`: its
            // loader's); else from the step alone (the k-th step of an epoch is step e·spe + k), never from the
            // records' epoch, which is the script's and may count from 1.
            let inEpoch = s.cursor == nil ? s.epochStep ?? (step > 0 ? (step - 1) % spe + 1 : 0)
                : (step > 0 ? (step - 1) % spe + 1 : 0)
            stepSpans.append(Span(" \(inEpoch)/\(spe)", palette.inactive))
        }
        items.append(("step", stepSpans))
        if let c = s.cursor { items.append(("cursor", [Span(view.xAxis.text(c), palette.highlight)])) }
        // LR per group: the live status's (held, notes), else the tracks' at the view step.
        func current(_ track: MetricTrack) -> Double? { run.value(of: track, at: view.viewStep) }
        let groups = s.groups
        let lrs = run.lr.compactMap(current)
        if groups.isEmpty, !lrs.isEmpty {
            for (g, v) in lrs.enumerated() {
                items.append((lrs.count == 1 ? "lr" : "lr " + (run.groupNames.indices.contains(g) ? run.groupNames[g] : "g\(g + 1)"),
                              [Span(Format.lr(v), palette.group(g))]))
            }
        } else {
            for (g, grp) in groups.enumerated() {
                let key = (view.selectedGroup == g ? "▸" : "") + (groups.count == 1 ? "lr" : "lr " + grp.name)
                var v = [Span(Format.lr(grp.lr), palette.group(g).bold)]
                if grp.held { v.append(Span(" HELD", palette.warn.bold)) }
                if let n = grp.note, !n.isEmpty { v.append(Span(" " + n, palette.inactive)) }
                items.append((key, v))
            }
        }
        if !s.scheduler.isEmpty { items.append(("sched", [Span(s.scheduler, palette.text)])) }
        if let l = current(run.loss) {
            var v = [Span(Format.metric(l), l.isFinite ? palette.text : palette.error)]
            if RunModel.smoothingWeights[view.smoothingIndex] > 0, let sm = current(run.smoothed[view.smoothingIndex]) {
                v.append(Span("  smooth " + Format.metric(sm), palette.smooth))
            }
            items.append(("loss", v))
        }
        if let e = run.eval(atOrBefore: view.viewStep) {
            items.append(("eval", [Span(Format.metric(e.loss), palette.valPoint),
                                   Span(" acc " + Format.percent(e.accuracy), palette.accPoint),
                                   Span(" @" + Format.grouped(e.step), palette.inactive)]))
        }
        if let g = current(run.gradNorm) {
            items.append(("grad", [Span(Format.metric(g), g.isFinite ? palette.text : palette.error)]))
        }
        if let step = view.viewStep { items += Self.systemRows(run, at: step, palette: palette) }
        if !s.optimizer.isEmpty { items.append(("optim", [Span(Format.typeable(s.optimizer), palette.text)])) }
        for d in s.details { items.append((d.key, [Span(d.value, palette.text)])) }
        rows = items
    }

    /// What GPU users look at, when the run's records give it (docs/runlog.md, "Reserved names"): memory
    /// peak / reserved / total, utilisation, and the spread of the ranks' step times.
    static func systemRows(_ run: RunModel, at step: Int, palette: Palette) -> [(key: String, value: [Span])] {
        func value(_ name: String) -> Double? {
            run.metrics.track(named: name)?.latest(atOrBefore: step).flatMap { $0.isFinite ? $0 : nil }
        }
        func gigabytes(_ bytes: Double) -> String { Format.significant(bytes / 1e9, 3) }
        var items: [(key: String, value: [Span])] = []
        let peak = value(SystemMetrics.gpuMemPeak), reserved = value(SystemMetrics.gpuMemReserved)
        let total = value(SystemMetrics.gpuMemTotal), util = value(SystemMetrics.gpuUtil)
        if peak != nil || reserved != nil || util != nil {
            var spans: [Span] = []
            if let peak {
                spans.append(Span(gigabytes(peak), palette.highlight))
                spans.append(Span((total.map { "/" + gigabytes($0) } ?? "") + " GB peak", palette.text))
            }
            if let reserved { spans.append(Span((spans.isEmpty ? "" : " · ") + gigabytes(reserved) + " rsv", palette.inactive)) }
            if let util { spans.append(Span((spans.isEmpty ? "" : " · ") + Format.fixed(util, 0) + "%", palette.highlight)) }
            items.append(("gpu", spans))
        }
        let times: [(rank: String, seconds: Double)] = run.metrics.names.compactMap { n in
            guard n.hasPrefix(SystemMetrics.rankStepTimePrefix) else { return nil }
            return value(n).map { (String(n.dropFirst(SystemMetrics.rankStepTimePrefix.count)), $0) }
        }
        if times.count > 1, let slow = times.max(by: { $0.seconds < $1.seconds }), let fast = times.min(by: { $0.seconds < $1.seconds }) {
            items.append(("ranks", [Span(Format.significant(fast.seconds * 1000, 3) + "–" + Format.significant(slow.seconds * 1000, 3) + " ms/step",
                                         palette.text),
                                    Span(" · slowest " + slow.rank, slow.seconds > fast.seconds * 1.2 ? palette.warn : palette.inactive)]))
        }
        return items
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        let block = Block(title: "status", titleStyle: palette.title, borderStyle: palette.border)
        block.render(KeyValueList(items: rows, keyStyle: palette.inactive), into: &buffer, area: area)
    }
}
