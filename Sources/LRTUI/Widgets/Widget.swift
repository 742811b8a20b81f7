/// Something that draws itself into a buffer within an area. Widgets never touch the terminal.
public protocol Widget {
    func render(into buffer: inout Buffer, area: Rect)
}

extension LineChart: Widget {}

/// A piece of text with one style.
public struct Span: Equatable, Sendable {
    public var text: String
    public var style: Style
    public init(_ text: String, _ style: Style = .plain) { self.text = text; self.style = style }
}

/// A line made of spans.
public struct TextLine: Equatable, Sendable, ExpressibleByStringLiteral {
    public var spans: [Span]
    public init(_ spans: [Span]) { self.spans = spans }
    public init(_ text: String, _ style: Style = .plain) { self.spans = [Span(text, style)] }
    public init(stringLiteral value: String) { self.spans = [Span(value)] }
    public var text: String { spans.map(\.text).joined() }
    public var width: Int { spans.reduce(0) { $0 + $1.text.cellWidth } }

    /// Draws the line from `at`, clipped to `clip`; returns the column after it.
    @discardableResult
    public func render(into buffer: inout Buffer, at pos: Position, clip: Rect) -> Int {
        var x = pos.x
        for s in spans { x = buffer.set(string: s.text, at: Position(x: x, y: pos.y), style: s.style, clip: clip) }
        return x
    }

    /// The line cut to `width` columns with an ellipsis.
    public func truncated(toWidth width: Int) -> TextLine {
        guard self.width > width else { return self }
        var out: [Span] = []
        var used = 0
        for s in spans {
            let w = s.text.cellWidth
            if used + w <= width - 1 { out.append(s); used += w; continue }
            out.append(Span(s.text.truncated(toWidth: width - used), s.style))
            break
        }
        return TextLine(out)
    }
}

/// Lines of text, top to bottom, clipped to the area.
public struct Paragraph: Widget {
    public var lines: [TextLine]
    public var truncate: Bool

    public init(_ lines: [TextLine], truncate: Bool = true) { self.lines = lines; self.truncate = truncate }

    public func render(into buffer: inout Buffer, area: Rect) {
        for (i, line) in lines.prefix(area.height).enumerated() {
            let l = truncate ? line.truncated(toWidth: area.width) : line
            l.render(into: &buffer, at: Position(x: area.x, y: area.y + i), clip: area)
        }
    }
}

/// A frame with a title around another widget (rounded corners, btop style).
public struct Block: Widget {
    public var title: String?
    public var rightTitle: String?
    public var titleStyle: Style
    public var rightTitleStyle: Style
    public var borderStyle: Style

    public init(title: String? = nil, rightTitle: String? = nil, titleStyle: Style = Style().bold,
                rightTitleStyle: Style = .plain, borderStyle: Style = .plain) {
        self.title = title; self.rightTitle = rightTitle; self.titleStyle = titleStyle
        self.rightTitleStyle = rightTitleStyle; self.borderStyle = borderStyle
    }

    /// The area inside the frame.
    public func inner(_ area: Rect) -> Rect { area.inset(by: 1) }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard area.width >= 2, area.height >= 2 else { return }
        let r = area.right - 1, b = area.bottom - 1
        for x in (area.x + 1)..<r {
            buffer.set(symbol: "─", at: Position(x: x, y: area.y), style: borderStyle)
            buffer.set(symbol: "─", at: Position(x: x, y: b), style: borderStyle)
        }
        for y in (area.y + 1)..<b {
            buffer.set(symbol: "│", at: Position(x: area.x, y: y), style: borderStyle)
            buffer.set(symbol: "│", at: Position(x: r, y: y), style: borderStyle)
        }
        buffer.set(symbol: "╭", at: Position(x: area.x, y: area.y), style: borderStyle)
        buffer.set(symbol: "╮", at: Position(x: r, y: area.y), style: borderStyle)
        buffer.set(symbol: "╰", at: Position(x: area.x, y: b), style: borderStyle)
        buffer.set(symbol: "╯", at: Position(x: r, y: b), style: borderStyle)
        let titleRow = Rect(x: area.x + 2, y: area.y, width: area.width - 4, height: 1)
        var leftEnd = titleRow.x
        if let title, !title.isEmpty, titleRow.width > 2 {
            let t = " " + title.truncated(toWidth: titleRow.width - 2) + " "
            leftEnd = buffer.set(string: t, at: Position(x: titleRow.x, y: area.y), style: titleStyle, clip: titleRow)
        }
        if let rightTitle, !rightTitle.isEmpty {
            let room = titleRow.right - leftEnd - 1
            if room > 4 {
                let t = " " + rightTitle.truncated(toWidth: room - 2) + " "
                buffer.set(string: t, at: Position(x: titleRow.right - t.cellWidth, y: area.y), style: rightTitleStyle,
                           clip: titleRow)
            }
        }
    }

    /// Draws the frame and the content inside it.
    public func render(_ content: some Widget, into buffer: inout Buffer, area: Rect) {
        render(into: &buffer, area: area)
        let i = inner(area)
        if !i.isEmpty { content.render(into: &buffer, area: i) }
    }
}

/// Clears an area to a style (under an overlay).
public struct Clear: Widget {
    public var style: Style
    public init(style: Style = .plain) { self.style = style }
    public func render(into buffer: inout Buffer, area: Rect) {
        buffer.fill(area, symbol: " ", style: Style(fg: style.fg ?? .default, bg: style.bg ?? .default, flags: style.flags))
    }
}
