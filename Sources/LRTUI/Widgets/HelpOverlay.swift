/// Every key and what it does, generated from `KeyMap.bindings`; one or two columns to fit.
public struct HelpOverlay: Widget {
    /// The help rows as plain text: "key  description".
    public var rows: [(key: String, help: String)]
    public var palette: Palette
    public var title: String

    public init(bindings: [KeyBinding] = KeyMap.bindings, palette: Palette, title: String = "keys — esc closes") {
        self.init(rows: bindings.map { ($0.keyLabel, $0.help) }, palette: palette, title: title)
    }

    /// Help for a screen with its own key table (the runs table).
    public init(rows: [(key: String, help: String)], palette: Palette, title: String = "keys — esc closes") {
        self.rows = rows; self.palette = palette; self.title = title
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        let rows = self.rows
        let keyWidth = rows.map(\.key.cellWidth).max() ?? 1
        let helpWidth = rows.map(\.help.cellWidth).max() ?? 1
        let colWidth = keyWidth + 2 + helpWidth
        let innerMaxH = max(1, area.height - 2)
        let columns = rows.count <= innerMaxH ? 1 : 2
        let perColumn = (rows.count + columns - 1) / columns
        let width = min(area.width, columns * colWidth + (columns - 1) * 3 + 4)
        let height = min(area.height, perColumn + 2)
        let box = area.centered(width: width, height: height)
        Clear(style: palette.background).render(into: &buffer, area: box)
        let block = Block(title: title, titleStyle: palette.title, borderStyle: palette.highlight)
        block.render(into: &buffer, area: box)
        let inner = block.inner(box).inset(left: 1, right: 1)
        guard !inner.isEmpty else { return }
        let realCol = columns == 1 ? inner.width : (inner.width - 3) / 2
        for (i, row) in rows.enumerated() {
            let col = i / perColumn, line = i % perColumn
            guard line < inner.height else { continue }
            let x = inner.x + col * (realCol + 3)
            let cell = Rect(x: x, y: inner.y + line, width: realCol, height: 1).intersection(inner)
            let text = TextLine([Span(row.key.padded(toWidth: keyWidth) + "  ", palette.highlight.bold),
                                 Span(row.help, palette.text)])
            text.truncated(toWidth: cell.width).render(into: &buffer, at: Position(x: cell.x, y: cell.y), clip: cell)
        }
    }
}
