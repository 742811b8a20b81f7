/// What the person changed in the runs table: sort, filter, tags, the selected row, expanded jobs, the scroll.
/// Rows are known by id, so all of it survives the rows changing under it every second.
public struct RunsTableState: Equatable, Sendable {
    /// nil: the rows' own order (newest first, as the source gives them).
    public var sortColumn: RunsColumn?
    public var descending = false
    /// Words that must all appear in a row's name, kind, state or host (case-insensitive).
    public var filter = ""
    public var tagged: Set<String> = []
    public var selectedID: String?
    /// DDP jobs shown with a row per rank.
    public var expanded: Set<String> = []
    public var scroll = 0

    public init() {}

    /// Sorts by `column`; the same column again reverses the order.
    public mutating func sort(by column: RunsColumn?) {
        if let column, column == sortColumn {
            descending.toggle()
        } else {
            sortColumn = column
            descending = column?.descendingFirst ?? false
        }
    }

    /// `<` / `>`: the previous / next column (past either end: the rows' own order).
    public mutating func shiftSort(by delta: Int) {
        let all = RunsColumn.allCases
        let i = sortColumn.map { $0.rawValue + delta } ?? (delta > 0 ? 0 : all.count - 1)
        sortColumn = nil
        sort(by: all.indices.contains(i) ? all[i] : nil)
    }

    public func matches(_ row: RunsRow) -> Bool {
        let words = filter.lowercased().split(separator: " ")
        guard !words.isEmpty else { return true }
        let hay = [row.name, row.kind, RunsColumn.state.text(row), row.host, row.log ?? ""].joined(separator: " ").lowercased()
        return words.allSatisfy { hay.contains($0) }
    }

    /// The rows as drawn: filtered, sorted (missing values last either way, ties in the source's order), and each
    /// expanded job followed by its ranks.
    public func displayRows(_ rows: [RunsRow]) -> [RunsRow] {
        var shown = rows.filter(matches)
        if let c = sortColumn {
            let desc = descending
            shown = shown.enumerated().sorted { a, b in
                switch (c.sortKey(a.element), c.sortKey(b.element)) {
                case (nil, nil): return a.offset < b.offset
                case (nil, _): return false
                case (_, nil): return true
                case let (ka?, kb?): return ka == kb ? a.offset < b.offset : (ka < kb) != desc
                }
            }.map(\.element)
        }
        var out: [RunsRow] = []
        for row in shown {
            out.append(row)
            guard row.isJob && expanded.contains(row.id) else { continue }
            // Each rank says how much slower it steps than the fastest (in its state column).
            let spread = RankSpread(row.ranks)
            out += row.ranks.map { var r = $0; r.reason = spread?.skew(of: $0); return r }
        }
        return out
    }

    /// Moves the selection by `delta` display rows (the first or last row when none is selected).
    public mutating func moveSelection(by delta: Int, in display: [RunsRow]) {
        guard !display.isEmpty else { selectedID = nil; return }
        guard let id = selectedID, let i = display.firstIndex(where: { $0.id == id }) else {
            selectedID = display[delta < 0 ? display.count - 1 : 0].id
            return
        }
        selectedID = display[max(0, min(display.count - 1, i + delta))].id
    }

    /// Keeps a selection on a row that is still shown (the first one when the selected row went away).
    public mutating func keepSelection(in display: [RunsRow]) {
        if let id = selectedID, display.contains(where: { $0.id == id }) { return }
        selectedID = display.first?.id
    }
}
