import LRLog

/// Events, latest first: `  1,200 › lr *2  1.00e-3→2.00e-3`, coloured by kind.
public struct EventList: Widget {
    /// In the order they happened (a rollback's events come after those of the branch it abandoned, though their
    /// steps are lower).
    public var events: [EventRecord]
    public var palette: Palette
    /// How an event's step is written (a time for runs replayed by wall time).
    public var stepLabel: (Int) -> String = Format.grouped
    /// The run's param group names, to name the groups an event changed.
    public var groups: [String] = []
    /// Rows scrolled down from the latest event.
    public var scroll = 0
    /// The highlighted event, counted from the latest (0), when the list has focus.
    public var selected: Int?

    /// `events` in the order they happened; the widget shows the latest first.
    public init(events: [EventRecord], palette: Palette, scroll: Int = 0, selected: Int? = nil) {
        self.events = events; self.palette = palette; self.scroll = scroll; self.selected = selected
    }

    /// The first row shown so that `selected` is visible in `height` rows, starting from `scroll`.
    public static func scroll(_ scroll: Int, keeping selected: Int?, height: Int, count: Int) -> Int {
        var top = max(0, min(scroll, count - height))
        if let s = selected {
            if s < top { top = s }
            if s >= top + height { top = s - height + 1 }
        }
        return max(0, top)
    }

    /// One line: the whole event, as the detail view shows it.
    public static func fullText(_ e: EventRecord, groups: [String] = [], stepLabel: (Int) -> String = Format.grouped) -> String {
        var t = "step " + stepLabel(e.step) + " " + glyph(e.kind) + " " + e.kind.rawValue + ": " + e.text
        let d = detail(e, groups: groups)
        if !d.isEmpty { t += " — " + d }
        return t
    }

    public static func glyph(_ kind: EventRecord.Kind) -> String {
        switch kind {
        case .command: return "›"
        case .error: return "✗"
        case .guardTrip: return "!"
        case .checkpoint: return "◆"
        case .rollback: return "↺"
        case .info: return "·"
        }
    }

    public static func style(_ kind: EventRecord.Kind, _ p: Palette) -> Style {
        switch kind {
        case .command: return p.highlight
        case .error: return p.error
        case .guardTrip: return p.warn.bold
        case .checkpoint: return p.ok
        case .rollback: return p.marker
        case .info: return p.inactive
        }
    }

    /// The text after the command: what changed, or the message.
    /// What an event changed, every token named: the LR change (`lr 1.00e-3→2.00e-3`; with several groups each
    /// changed group by name, `lr body 1.00e-3→2.00e-3, head 5.00e-4→1.00e-3`, or how many when more than two
    /// changed), then its message. The event list, the detail view and every command's answer (live, watch,
    /// attach) use it, so one command reads the same everywhere.
    public static func detail(_ e: EventRecord, groups: [String] = []) -> String {
        var parts: [String] = []
        if let lr = lrChange(e, groups: groups) { parts.append(lr) }
        if let m = e.message, !m.isEmpty { parts.append(m) }
        return parts.joined(separator: " · ")
    }

    static func lrChange(_ e: EventRecord, groups: [String]) -> String? {
        guard e.lrsBefore != e.lrsAfter, !e.lrsAfter.isEmpty else { return nil }
        if e.lrsBefore.isEmpty, let b = e.lrsAfter.first { return "lr →" + Format.lr(b) }
        let pairs = Array(zip(e.lrsBefore, e.lrsAfter))
        let changed = pairs.indices.filter { pairs[$0].0 != pairs[$0].1 && !(pairs[$0].0.isNaN && pairs[$0].1.isNaN) }
        guard let first = changed.first else { return nil }
        func change(_ g: Int) -> String { Format.lr(pairs[g].0) + "→" + Format.lr(pairs[g].1) }
        func name(_ g: Int) -> String { groups.indices.contains(g) ? groups[g] : "group \(g + 1)" }
        if pairs.count == 1 { return "lr " + change(0) }
        if changed.count <= 2 {
            let list = changed.map { name($0) + " " + change($0) }.joined(separator: ", ")
            return "lr " + list + (changed.count < pairs.count ? " (other groups unchanged)" : "")
        }
        return "lr in \(changed.count) of \(pairs.count) groups, " + name(first) + " " + change(first) + " …"
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        if events.isEmpty {
            buffer.set(string: "no events yet".truncated(toWidth: area.width), at: Position(x: area.x, y: area.y),
                       style: palette.inactive, clip: area)
            return
        }
        let top = Self.scroll(scroll, keeping: selected, height: area.height, count: events.count)
        let shown = events.reversed().dropFirst(top).prefix(area.height)
        let stepWidth = shown.map { stepLabel($0.step).count }.max() ?? 1
        for (i, e) in shown.enumerated() {
            let kindStyle = Self.style(e.kind, palette)
            var line = TextLine([
                Span(stepLabel(e.step).leftPadded(toWidth: stepWidth) + " ", palette.inactive),
                Span(Self.glyph(e.kind) + " ", kindStyle),
                Span(e.text, e.kind == .error || e.kind == .guardTrip ? kindStyle : palette.text),
            ])
            let d = Self.detail(e, groups: groups)
            if !d.isEmpty { line.spans.append(Span("  " + d, e.kind == .error ? palette.error.removing(.bold) : palette.inactive)) }
            if selected == top + i {
                line.spans = line.spans.map { Span($0.text, $0.style.reversed) }
                buffer.fill(area.row(i), style: palette.text.reversed)
            }
            line.truncated(toWidth: area.width).render(into: &buffer, at: Position(x: area.x, y: area.y + i), clip: area)
        }
    }
}
