/// `key  value` lines with the keys in one column (the status panel).
public struct KeyValueList: Widget {
    public var items: [(key: String, value: [Span])]
    public var keyStyle: Style

    public init(items: [(key: String, value: [Span])], keyStyle: Style = Style().dim) {
        self.items = items; self.keyStyle = keyStyle
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        // Only the rows that fit decide the key column: a long key below the fold must not squeeze the values.
        let keyWidth = min(items.prefix(area.height).map(\.key.cellWidth).max() ?? 0, max(0, area.width / 2))
        for (i, item) in items.prefix(area.height).enumerated() {
            let y = area.y + i
            buffer.set(string: item.key.padded(toWidth: keyWidth), at: Position(x: area.x, y: y), style: keyStyle, clip: area)
            let valueArea = Rect(x: area.x + keyWidth + 1, y: y, width: area.width - keyWidth - 1, height: 1)
            TextLine(item.value).truncated(toWidth: valueArea.width)
                .render(into: &buffer, at: Position(x: valueArea.x, y: y), clip: valueArea)
        }
    }
}
