/// The table of runs (htop's process list): a header, then one row per run with a tag mark, the selected row
/// highlighted, ended runs dimmed, stalled runs flagged, and the answer to the last command in the state column.
public struct RunsTable: Widget {
    public var rows: [RunsRow]
    public var state: RunsTableState
    /// The last answer of each run to a command from the table, shown in its state column.
    public var notes: [String: RunsRowNote]
    public var palette: Palette

    public init(rows: [RunsRow], state: RunsTableState, notes: [String: RunsRowNote] = [:], palette: Palette) {
        self.rows = rows; self.state = state; self.notes = notes; self.palette = palette
    }

    /// The tag mark and the job's expand mark before the first column.
    static let markWidth = 2

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let display = state.displayRows(rows)
        let layout = RunsTableLayout(rows: display, notes: notes, width: area.width - Self.markWidth)
        let header = area.row(0)
        buffer.fill(header, style: palette.title.reversed)
        for (column, x, width) in layout.visible {
            var title = column.title
            // The sort arrow takes the gap after a title as wide as its column.
            if state.sortColumn == column { title += state.descending ? "▼" : "▲" }
            let room = max(width, min(title.cellWidth, width + RunsTableLayout.gap))
            let text = column.rightAligned ? title.leftPadded(toWidth: room) : title.padded(toWidth: room)
            let style = state.sortColumn == column ? palette.highlight.bold.reversed : palette.title.reversed
            buffer.set(string: text, at: Position(x: area.x + Self.markWidth + x, y: header.y), style: style, clip: header)
        }
        let bodyHeight = area.height - 1
        guard bodyHeight > 0 else { return }
        if display.isEmpty {
            let text = rows.isEmpty ? "no live runs" : "no run matches the filter '\(state.filter)' (/ to change it, esc clears)"
            buffer.set(string: text.truncated(toWidth: area.width), at: Position(x: area.x, y: area.y + 1),
                       style: palette.inactive, clip: area)
            return
        }
        let selected = state.selectedID.flatMap { id in display.firstIndex { $0.id == id } }
        let top = EventList.scroll(state.scroll, keeping: selected, height: bodyHeight, count: display.count)
        let trendScale = Self.trendScale(display)
        for (i, row) in display.dropFirst(top).prefix(bodyHeight).enumerated() {
            let y = area.y + 1 + i
            let line = Rect(x: area.x, y: y, width: area.width, height: 1)
            let isSelected = selected == top + i
            var base = row.ended ? palette.inactive : palette.text
            if isSelected { buffer.fill(line, style: palette.selected); base = palette.selected.patched(with: Style(flags: base.flags)) }
            let tagged = state.tagged.contains(row.id)
            let mark: String = (tagged ? "●" : " ") + (row.isJob ? (state.expanded.contains(row.id) ? "▾" : "▸") : " ")
            buffer.set(string: mark, at: Position(x: area.x, y: y), style: tagged ? base.patched(with: palette.warn).bold : base, clip: line)
            for (column, x, width) in layout.visible {
                let cell = Rect(x: area.x + Self.markWidth + x, y: y, width: width, height: 1).intersection(line)
                draw(column, of: row, into: &buffer, cell: cell, base: base, selected: isSelected, trendScale: trendScale)
            }
        }
    }

    func draw(_ column: RunsColumn, of row: RunsRow, into buffer: inout Buffer, cell: Rect, base: Style, selected: Bool,
              trendScale: ClosedRange<Double>?) {
        guard !cell.isEmpty else { return }
        var style = base
        var text = column.text(row)
        switch column {
        case .trend:
            guard let s = trendScale, row.rank == nil else { return }
            // One scale for every row, so a glance down the column compares the runs' losses.
            let values = row.lossTrend.suffix(cell.width).map { v -> Double? in
                v.isFinite ? (s.upperBound > s.lowerBound ? 0.1 + 0.9 * (v - s.lowerBound) / (s.upperBound - s.lowerBound) : 0.5) : nil
            }
            Sparkline(values: values, maxValue: 1, style: row.ended || selected ? base : palette.smooth)
                .render(into: &buffer, area: cell)
            return
        case .state:
            if let note = notes[row.id] {
                text = RunsTable.noteText(note)
                if !selected { style = note.ok == nil ? palette.warn : note.ok! ? palette.ok : palette.error }
            } else if row.isStalled {
                if !selected { style = palette.error.bold }
            } else if !row.ended && !selected && row.state != "running" && row.rank == nil {
                style = palette.warn
            }
        case .age:
            if row.isStalled && !selected { style = palette.error.bold }
        case .name:
            if !row.ended && row.rank == nil { style = style.bold }
        default: break
        }
        let shown = text.cellWidth > cell.width ? text.truncated(toWidth: cell.width)
            : column.rightAligned ? text.leftPadded(toWidth: cell.width) : text
        buffer.set(string: shown, at: Position(x: cell.x, y: cell.y), style: style, clip: cell)
    }

    /// "✓ lr 5e-4", "✗ the run has ended", "… lr *0.5" while awaited.
    static func noteText(_ note: RunsRowNote) -> String {
        (note.ok == nil ? "… " : note.ok! ? "✓ " : "✗ ") + note.text
    }

    /// The range of the trend column over all rows shown.
    static func trendScale(_ rows: [RunsRow]) -> ClosedRange<Double>? {
        let all = rows.flatMap { $0.lossTrend.suffix(RunsColumn.trendWidth) }.filter(\.isFinite)
        guard let lo = all.min(), let hi = all.max() else { return nil }
        return lo...hi
    }
}

/// Which columns fit in `width` and where: each as wide as its widest cell (within its bound); when they do not
/// all fit, the name column narrows to its minimum, then the columns of least priority are left off.
struct RunsTableLayout {
    var visible: [(column: RunsColumn, x: Int, width: Int)] = []

    static let gap = 1
    /// Every column with names cut to `shortestName`, else a readable name (`minimumNameWidth`) and fewer columns.
    static let minimumNameWidth = 12
    static let shortestName = 8
    /// The state column holds a command's answer or an end reason: it narrows to this, not below.
    static let minimumStateWidth = 12

    init(rows: [RunsRow], notes: [String: RunsRowNote], width: Int) {
        var widths: [RunsColumn: Int] = [:]
        for c in RunsColumn.allCases {
            var w = c.title.cellWidth
            if c == .trend {
                w = RunsColumn.trendWidth
            } else {
                for row in rows { w = max(w, c.text(row).cellWidth) }
            }
            widths[c] = min(w, c.maxWidth)

        }
        var shown = Set(RunsColumn.allCases)
        func total() -> Int { shown.reduce(0) { $0 + widths[$1]! + Self.gap } - Self.gap }
        let nameWidth = widths[.name]!
        if total() > width { widths[.name] = min(nameWidth, Self.minimumNameWidth) }
        if total() > width { widths[.state] = min(widths[.state]!, Self.minimumStateWidth) }
        if total() > width { widths[.kind] = min(widths[.kind]!, 7) }
        if total() > width, total() - widths[.name]! + min(nameWidth, Self.shortestName) <= width {
            widths[.name] = min(nameWidth, Self.shortestName)
        }
        for c in RunsColumn.allCases.sorted(by: { $0.priority > $1.priority }) where total() > width && c != .name {
            shown.remove(c)
        }
        // An answer to a command takes what the state column needs first: it is what the person looks for now.
        if !notes.isEmpty {
            let wanted = min(32, notes.values.map { RunsTable.noteText($0).cellWidth }.max() ?? 0)
            while widths[.state]! < wanted, total() + wanted - widths[.state]! > width,
                  let drop = RunsColumn.allCases.filter({ shown.contains($0) && $0 != .name && $0 != .state })
                      .max(by: { $0.priority < $1.priority }) {
                shown.remove(drop)
            }
            widths[.state] = max(widths[.state]!, min(wanted, width - total() + widths[.state]!))
        }
        // What is left over widens the name column (long run names are the common case).
        let spare = width - total()
        if spare > 0 { widths[.name]! += min(spare, RunsColumn.name.maxWidth - widths[.name]!) }
        if widths[.name]! > width { widths[.name] = max(0, width) }
        var x = 0
        for c in RunsColumn.allCases where shown.contains(c) {
            visible.append((c, x, widths[c]!))
            x += widths[c]! + Self.gap
        }
    }
}
