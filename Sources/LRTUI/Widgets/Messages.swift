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
