import LRLog

/// Events, latest first: `  1,200 › lr *2  1.00e-3→2.00e-3`, coloured by kind.
public struct EventList: Widget {
    public var events: [EventRecord]
    public var palette: Palette

    /// `events` in any order; the widget shows the latest first.
    public init(events: [EventRecord], palette: Palette) {
        self.events = events; self.palette = palette
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
    public static func detail(_ e: EventRecord) -> String {
        var parts: [String] = []
        if e.lrsBefore != e.lrsAfter, !e.lrsAfter.isEmpty {
            let changed = zip(e.lrsBefore, e.lrsAfter).enumerated().filter { $0.element.0 != $0.element.1 }
            if let (_, (a, b)) = changed.first {
                parts.append(Format.lr(a) + "→" + Format.lr(b) + (changed.count > 1 ? " +\(changed.count - 1)" : ""))
            } else if e.lrsBefore.isEmpty, let b = e.lrsAfter.first {
                parts.append("→" + Format.lr(b))
            }
        }
        if let m = e.message, !m.isEmpty { parts.append(m) }
        return parts.joined(separator: "  ")
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        if events.isEmpty {
            buffer.set(string: "no events yet".truncated(toWidth: area.width), at: Position(x: area.x, y: area.y),
                       style: palette.inactive, clip: area)
            return
        }
        let shown = events.sorted { ($0.step, $0.wallTime) > ($1.step, $1.wallTime) }.prefix(area.height)
        let stepWidth = shown.map { Format.grouped($0.step).count }.max() ?? 1
        for (i, e) in shown.enumerated() {
            let kindStyle = Self.style(e.kind, palette)
            var line = TextLine([
                Span(Format.grouped(e.step).leftPadded(toWidth: stepWidth) + " ", palette.inactive),
                Span(Self.glyph(e.kind) + " ", kindStyle),
                Span(e.text, e.kind == .error || e.kind == .guardTrip ? kindStyle : palette.text),
            ])
            let d = Self.detail(e)
            if !d.isEmpty { line.spans.append(Span("  " + d, e.kind == .error ? palette.error.removing(.bold) : palette.inactive)) }
            line.truncated(toWidth: area.width).render(into: &buffer, at: Position(x: area.x, y: area.y + i), clip: area)
        }
    }
}

/// `key  value` lines with the keys in one column (the status panel).
public struct KeyValueList: Widget {
    public var items: [(key: String, value: [Span])]
    public var keyStyle: Style

    public init(items: [(key: String, value: [Span])], keyStyle: Style = Style().dim) {
        self.items = items; self.keyStyle = keyStyle
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let keyWidth = min(items.map(\.key.cellWidth).max() ?? 0, max(0, area.width / 2))
        for (i, item) in items.prefix(area.height).enumerated() {
            let y = area.y + i
            buffer.set(string: item.key.padded(toWidth: keyWidth), at: Position(x: area.x, y: y), style: keyStyle, clip: area)
            let valueArea = Rect(x: area.x + keyWidth + 1, y: y, width: area.width - keyWidth - 1, height: 1)
            TextLine(item.value).truncated(toWidth: valueArea.width)
                .render(into: &buffer, at: Position(x: valueArea.x, y: y), clip: valueArea)
        }
    }
}

/// The one line shown instead of the dashboard when the terminal is below the layout's minimum.
public struct TooSmallMessage: Widget {
    public var required: (width: Int, height: Int)
    public var actual: (width: Int, height: Int)
    public var style: Style

    public init(required: (width: Int, height: Int), actual: (width: Int, height: Int), style: Style = .plain) {
        self.required = required; self.actual = actual; self.style = style
    }

    public var text: String {
        "terminal too small: need at least \(required.width)x\(required.height), have \(actual.width)x\(actual.height)"
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let short = "too small: need \(required.width)x\(required.height), have \(actual.width)x\(actual.height)"
        let t = (text.cellWidth <= area.width ? text : short).truncated(toWidth: area.width)
        buffer.set(string: t, at: Position(x: area.x + max(0, (area.width - t.cellWidth) / 2), y: area.y + area.height / 2),
                   style: style, clip: area)
    }
}

/// A small centred box asking a yes/no question.
public struct ConfirmDialog: Widget {
    public var message: String
    public var palette: Palette

    public init(message: String, palette: Palette) { self.message = message; self.palette = palette }

    public func render(into buffer: inout Buffer, area: Rect) {
        let box = area.centered(width: min(area.width, message.cellWidth + 6), height: 3)
        Clear(style: palette.background).render(into: &buffer, area: box)
        Block(title: "confirm", titleStyle: palette.warn.bold, borderStyle: palette.warn)
            .render(Paragraph([TextLine(" " + message, palette.text.bold)]), into: &buffer, area: box)
    }
}
