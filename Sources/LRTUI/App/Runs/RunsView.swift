// Drawing the runs table screen: a title line, the table, a line for the last command's answers (or a notice, or
// the selected run in full), the key bar; overlays (help, sort menu, stacks) on top.
extension RunsScreen {
    public func render(into buffer: inout Buffer) {
        if let child { child.dashboard.render(into: &buffer); return }
        let area = buffer.area
        buffer.fill(area, style: palette.background)
        guard area.width >= Self.minimumSize.width, area.height >= Self.minimumSize.height else {
            TooSmallMessage(required: Self.minimumSize, actual: (area.width, area.height), style: palette.warn.bold)
                .render(into: &buffer, area: area)
            return
        }
        renderTitle(into: &buffer, area: area.row(0))
        let table = Rect(x: area.x, y: area.y + 1, width: area.width, height: area.height - 3)
        lastTableArea = table
        let selected = state.selectedID.flatMap { id in display.firstIndex { $0.id == id } }
        state.scroll = EventList.scroll(state.scroll, keeping: selected, height: table.height - 1, count: display.count)
        RunsTable(rows: rows, state: state, notes: notes, palette: palette).render(into: &buffer, area: table)
        renderSummary(into: &buffer, area: area.row(area.height - 2))
        let bar = area.row(area.height - 1)
        switch overlay {
        case .prompt(let p): PromptView(state: p, palette: palette).render(into: &buffer, area: bar)
        case .filter(let p): PromptView(state: p, palette: palette, prefix: "filter: ").render(into: &buffer, area: bar)
        default: renderKeyBar(into: &buffer, area: bar)
        }
        switch overlay {
        case .help:
            HelpOverlay(rows: RunsKeyMap.helpRows, palette: palette, title: "runs table keys — any key closes")
                .render(into: &buffer, area: area.inset(top: 1, bottom: 1))
        case .sortMenu(let i): renderSortMenu(into: &buffer, area: area, highlighted: i)
        case .stacks(var view):
            // The last page is full: scrolling past it (end) stops at it.
            view.scroll = max(0, min(view.scroll, view.lines.count - (area.height - 4)))
            overlay = .stacks(view)
            renderStacks(view, into: &buffer, area: area.inset(top: 1, bottom: 1))
        default: break
        }
    }

    func renderTitle(into buffer: inout Buffer, area: Rect) {
        let ended = rows.filter(\.ended).count
        let stalled = rows.filter { $0.isStalled || $0.ranks.contains(where: \.isStalled) }.count
        var parts = ["lrtop runs", "\(rows.count - ended) live" + (ended > 0 ? ", \(ended) ended" : "")]
        if stalled > 0 { parts.append("\(stalled) stalled") }
        if !state.tagged.isEmpty { parts.append("\(rows.filter { state.tagged.contains($0.id) }.count) tagged") }
        if let c = state.sortColumn { parts.append("sort: " + c.title + (state.descending ? " ▼" : " ▲")) }
        if !state.filter.isEmpty { parts.append("filter: " + state.filter) }
        buffer.set(string: parts.joined(separator: " · ").truncated(toWidth: area.width), at: Position(x: area.x, y: area.y),
                   style: palette.title.bold, clip: area)
    }

    /// The notice, else the last command's tally ("lr *0.5 → 2 runs: 1 ✓ 1 ✗ · b: the run has ended"), else the
    /// selected run's state and reason in full (the table may have cut it).
    func renderSummary(into buffer: inout Buffer, area: Rect) {
        var text: String
        var style = palette.inactive
        if let n = notice {
            text = n.text
            style = n.isError ? palette.error : palette.text
        } else if let sent = lastSent {
            let answered = notes.values.filter { $0.ok != nil }
            let good = answered.filter { $0.ok == true }.count, bad = answered.count - good
            text = "\(sent.command) → \(sent.count) run" + (sent.count == 1 ? "" : "s") + ": \(good) ✓ \(bad) ✗"
            if answered.count < sent.count { text += " · \(sent.count - answered.count) awaited" }
            // The selected run's answer in full (the row may cut it), else the first refusal.
            let shown = selectedJob.flatMap { r in notes[r.id].map { (r, $0) } }
                ?? rows.first { notes[$0.id]?.ok == false }.map { ($0, notes[$0.id]!) }
            if let (row, note) = shown { text += " · " + row.name + ": " + RunsTable.noteText(note) }
            style = bad > 0 ? palette.error : palette.ok
        } else if let job = selectedJob, job.isJob {
            text = job.name + " · \(job.ranks.count) ranks"
            if let spread = RankSpread(job.ranks) {
                text += " · step time mean " + RunsColumn.stepTime(spread.meanStepTime) + " max " + RunsColumn.stepTime(spread.maxStepTime)
                text += job.ranks.map { r in " · rank \(r.rank ?? 0) " + (spread.skew(of: r) ?? "—") }.joined()
            }
        } else if let row = selectedRow {
            text = row.name + " · " + RunsColumn.state.text(row)
            if let log = row.log { text += " · " + log }
        } else {
            return
        }
        buffer.set(string: text.truncated(toWidth: area.width), at: Position(x: area.x, y: area.y), style: style, clip: area)
    }

    func renderKeyBar(into buffer: inout Buffer, area: Rect) {
        var x = area.x
        for b in RunsKeyMap.table {
            guard let label = b.bar else { continue }
            let key = b.keys[0] == .space ? "␣" : b.keys[0].description
            guard x + key.cellWidth + label.cellWidth + 1 <= area.right else { break }
            x = buffer.set(string: key, at: Position(x: x, y: area.y), style: palette.highlight.bold, clip: area)
            x = buffer.set(string: " " + label + "  ", at: Position(x: x, y: area.y), style: palette.inactive, clip: area)
        }
    }

    func renderSortMenu(into buffer: inout Buffer, area: Rect, highlighted: Int) {
        let all = RunsColumn.allCases
        let box = area.centered(width: 30, height: min(area.height, all.count + 2))
        Clear(style: palette.background).render(into: &buffer, area: box)
        let block = Block(title: "sort by", titleStyle: palette.title, borderStyle: palette.highlight)
        block.render(into: &buffer, area: box)
        let inner = block.inner(box).inset(left: 1, right: 1)
        let top = EventList.scroll(0, keeping: highlighted, height: inner.height, count: all.count)
        for (i, c) in all.enumerated().dropFirst(top).prefix(inner.height) {
            let row = inner.row(i - top)
            let mark = state.sortColumn == c ? (state.descending ? " ▼" : " ▲") : ""
            if i == highlighted { buffer.fill(row, style: palette.selected) }
            buffer.set(string: c.title + mark, at: Position(x: row.x, y: row.y),
                       style: i == highlighted ? palette.selected : palette.text, clip: row)
        }
    }

    func renderStacks(_ view: StacksView, into buffer: inout Buffer, area: Rect) {
        Clear(style: palette.background).render(into: &buffer, area: area)
        let block = Block(title: "stacks of \(view.name)", rightTitle: "↑↓ pgup pgdn scroll · S again · esc closes",
                          titleStyle: palette.title, borderStyle: palette.highlight)
        block.render(into: &buffer, area: area)
        let inner = block.inner(area).inset(left: 1, right: 1)
        let lines = view.lines
        for (i, line) in lines.dropFirst(view.scroll).prefix(inner.height).enumerated() {
            let style: Style
            switch line.kind {
            case .heading: style = palette.highlight.bold
            case .frame: style = palette.text
            case .code: style = palette.smooth
            case .error: style = palette.error
            case .waiting: style = palette.inactive
            }
            let row = inner.row(i)
            buffer.set(string: line.text.truncated(toWidth: row.width), at: Position(x: row.x, y: row.y), style: style, clip: row)
        }
    }
}
