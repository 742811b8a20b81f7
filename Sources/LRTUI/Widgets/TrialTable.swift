#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The comparison view of several runs that share a starting point (sweep trials, fork branches): one row per run,
/// its configuration on the left, its results on the right, sortable by any column, one row selected.
/// The table knows cells, not sweeps or branches: callers build rows of labelled cells.
public struct TrialTable: Widget {
    public var columns: [TrialColumn]
    public var rows: [TrialRow]
    public var state: TrialTableState
    public var palette: Palette

    public init(columns: [TrialColumn], rows: [TrialRow], state: TrialTableState = TrialTableState(),
                palette: Palette) {
        self.columns = columns; self.rows = rows; self.state = state; self.palette = palette
    }

    /// The rows in display order.
    public var sortedRows: [TrialRow] { state.sorted(rows, columns: columns) }

    public func render(into buffer: inout Buffer, area: Rect) {
        guard !area.isEmpty else { return }
        let layout = TrialTableLayout(columns: columns, rows: rows, width: area.width)
        let headerY = area.y
        for (slot, x) in layout.visible {
            let column = columns[slot.column]
            var title = column.title
            if state.sortColumn == slot.column { title += state.descending ? "▼" : "▲" }
            let style = state.sortColumn == slot.column ? palette.highlight.bold : palette.title
            let text = column.alignment == .right ? title.leftPadded(toWidth: slot.width) : title.padded(toWidth: slot.width)
            buffer.set(string: text, at: Position(x: area.x + x, y: headerY), style: style, clip: area)
        }
        if layout.hiddenColumns > 0 {
            buffer.set(string: "›", at: Position(x: area.right - 1, y: headerY), style: palette.inactive, clip: area)
        }
        let bodyHeight = area.height - 1
        guard bodyHeight > 0 else { return }
        let ordered = sortedRows
        if ordered.isEmpty {
            buffer.set(string: "no rows yet".truncated(toWidth: area.width), at: Position(x: area.x, y: headerY + 1),
                       style: palette.inactive, clip: area)
            return
        }
        let selectedIndex = state.selectedID.flatMap { id in ordered.firstIndex { $0.id == id } }
        let top = EventList.scroll(state.scroll, keeping: selectedIndex, height: bodyHeight, count: ordered.count)
        let scales = seriesScales(widths: Dictionary(layout.visible.map { ($0.slot.column, $0.slot.width) }) { a, _ in a })
        for (i, row) in ordered.dropFirst(top).prefix(bodyHeight).enumerated() {
            let y = headerY + 1 + i
            let isSelected = selectedIndex == top + i
            if isSelected { buffer.fill(Rect(x: area.x, y: y, width: area.width, height: 1), style: palette.selected) }
            for (slot, x) in layout.visible {
                let cellArea = Rect(x: area.x + x, y: y, width: slot.width, height: 1).intersection(area)
                let value = slot.column < row.cells.count ? row.cells[slot.column] : .missing
                draw(value, column: columns[slot.column], scale: scales[slot.column], into: &buffer, area: cellArea,
                     selected: isSelected)
            }
        }
    }

    func draw(_ value: TrialValue, column: TrialColumn, scale: ClosedRange<Double>?, into buffer: inout Buffer,
              area: Rect, selected: Bool) {
        guard !area.isEmpty else { return }
        var style: Style
        switch value {
        case .missing: style = palette.inactive
        case .state(_, let tone): style = toneStyle(tone)
        default: style = column.role == .configuration ? palette.text : palette.highlight
        }
        if selected { style = palette.selected.patched(with: Style(flags: style.flags)) }
        if case .series(let values) = value {
            // Over a range of more than 10x (losses early and late), a log scale keeps the late part readable.
            let useLog = scale.map { $0.lowerBound > 0 && $0.upperBound > 10 * $0.lowerBound } ?? false
            let f: (Double) -> Double = { useLog ? log($0) : $0 }
            let shown = values.suffix(area.width).map { v -> Double? in
                guard let v, v.isFinite, let s = scale else { return nil }
                let lo = f(s.lowerBound), hi = f(s.upperBound)
                // Scaled over the column's range, with a floor so the lowest point still shows a bar.
                return hi > lo ? 0.1 + 0.9 * (f(v) - lo) / (hi - lo) : 0.5
            }
            Sparkline(values: shown, maxValue: 1, style: style).render(into: &buffer, area: area)
            return
        }
        let text = value.text
        let aligned = column.alignment == .right ? text.leftPadded(toWidth: area.width) : text.padded(toWidth: area.width)
        let shown = text.cellWidth > area.width ? text.truncated(toWidth: area.width) : aligned
        buffer.set(string: shown, at: Position(x: area.x, y: area.y), style: style, clip: area)
    }

    func toneStyle(_ tone: TrialTone) -> Style {
        switch tone {
        case .waiting: return palette.inactive
        case .active: return palette.warn
        case .good: return palette.ok
        case .stopped: return palette.inactive
        case .bad: return palette.error
        }
    }

    /// Each series column's range over all rows (the part that fits in its width), so rows' sparklines compare on
    /// one scale.
    func seriesScales(widths: [Int: Int]) -> [ClosedRange<Double>?] {
        columns.indices.map { c in
            var lo = Double.infinity, hi = -Double.infinity
            for row in rows where c < row.cells.count {
                guard case .series(let values) = row.cells[c] else { continue }
                for v in values.suffix(widths[c] ?? 0) { if let v, v.isFinite { lo = min(lo, v); hi = max(hi, v) } }
            }
            return lo <= hi ? lo...hi : nil
        }
    }
}

/// One column: its title, whether it is part of the configuration or a result, and which way is better (the first
/// sort on a result column puts the best rows on top).
public struct TrialColumn: Equatable, Sendable {
    public enum Role: Sendable { case configuration, result }
    public enum Better: Sendable { case lower, higher }
    public enum Alignment: Sendable { case left, right }

    public var title: String
    public var role: Role
    public var better: Better?
    public var alignment: Alignment
    /// The width of a series (sparkline) column, or the widest a text column may take.
    public var maxWidth: Int?

    public init(_ title: String, role: Role, better: Better? = nil, alignment: Alignment? = nil, maxWidth: Int? = nil) {
        self.title = title; self.role = role; self.better = better
        self.alignment = alignment ?? (role == .result ? .right : .left)
        self.maxWidth = maxWidth
    }

    public static func configuration(_ title: String, maxWidth: Int? = nil) -> TrialColumn {
        TrialColumn(title, role: .configuration, maxWidth: maxWidth)
    }

    public static func result(_ title: String, better: Better? = nil) -> TrialColumn {
        TrialColumn(title, role: .result, better: better)
    }

    /// A sparkline of a series per row (e.g. val loss over evaluations).
    public static func series(_ title: String, width: Int = 12, better: Better? = .lower) -> TrialColumn {
        TrialColumn(title, role: .result, better: better, alignment: .left, maxWidth: width)
    }

    /// The state of a row (queued, running, done...).
    public static func state(_ title: String = "state") -> TrialColumn {
        TrialColumn(title, role: .result, alignment: .left)
    }
}

/// How a number is written: the same conventions as the rest of the UI (`Format`).
public enum TrialNumberStyle: Equatable, Sendable {
    case lr, metric, percent, integer, compact, duration
    case fixed(Int)

    public func format(_ v: Double) -> String {
        switch self {
        case .lr: return Format.lr(v)
        case .metric: return Format.metric(v)
        case .percent: return Format.percent(v)
        case .integer: return v.isFinite ? Format.grouped(Int(v.rounded())) : Format.metric(v)
        case .compact: return Format.compact(v)
        case .duration: return Format.duration(v)
        case .fixed(let d): return Format.fixed(v, d)
        }
    }

    /// A spread beside its mean, to the mean's last written digit: 0.4321 ±0.0123, 87.1% ±0.4.
    public func formatSpread(_ spread: Double, mean: Double) -> String {
        switch self {
        case .percent: return Format.fixed(spread * 100, 1)
        case .metric, .fixed:
            let m = format(mean)
            guard !m.contains("e"), spread.isFinite else { return Format.metric(spread) }
            let decimals = m.firstIndex(of: ".").map { m.distance(from: $0, to: m.endIndex) - 1 } ?? 0
            return Format.fixed(spread, decimals)
        default: return format(spread)
        }
    }
}

/// How a row's state is coloured.
public enum TrialTone: Int, Comparable, Sendable {
    case active, waiting, good, stopped, bad
    public static func < (a: TrialTone, b: TrialTone) -> Bool { a.rawValue < b.rawValue }
}

/// One cell of a row.
public enum TrialValue: Equatable, Sendable {
    case text(String)
    case number(Double, TrialNumberStyle)
    /// A mean over repeats (seeds) with its spread: "0.4321 ±0.0123".
    case estimate(mean: Double, spread: Double, TrialNumberStyle)
    case series([Double?])
    case state(String, TrialTone)
    case missing

    public var text: String {
        switch self {
        case .text(let s): return s
        case .number(let v, let style): return style.format(v)
        case .estimate(let m, let s, let style): return style.format(m) + (s.isNaN ? "" : " ±" + style.formatSpread(s, mean: m))
        case .series(let values): return values.last.flatMap { $0 }.map(Format.metric) ?? "—"
        case .state(let s, _): return s
        case .missing: return "—"
        }
    }

    /// The number a row is sorted by, if the cell holds one (a series sorts by its latest value).
    var sortNumber: Double? {
        switch self {
        case .number(let v, _), .estimate(let v, _, _): return v.isNaN ? nil : v
        case .series(let values): return values.last(where: { $0 != nil && $0!.isFinite }).flatMap { $0 }
        case .text(let s): return Double(s)
        default: return nil
        }
    }
}

/// One row: an id that stays with it through sorting and updates, and one cell per column.
public struct TrialRow: Equatable, Sendable {
    public var id: String
    public var cells: [TrialValue]
    public init(id: String, cells: [TrialValue]) { self.id = id; self.cells = cells }
}

/// What the user changed: the sort column and direction, the selected row, the scroll. Kept by the caller between
/// frames; the keys call its mutating methods.
public struct TrialTableState: Equatable, Sendable {
    /// nil: the rows' own order.
    public var sortColumn: Int?
    public var descending: Bool
    public var selectedID: String?
    public var scroll: Int

    public init(sortColumn: Int? = nil, descending: Bool = false, selectedID: String? = nil, scroll: Int = 0) {
        self.sortColumn = sortColumn; self.descending = descending; self.selectedID = selectedID; self.scroll = scroll
    }

    /// Sorts by the next column (after the last, back to the rows' own order), best first where the column says.
    public mutating func cycleSortColumn(columns: [TrialColumn]) {
        let next = (sortColumn ?? -1) + 1
        sort(by: next < columns.count ? next : nil, columns: columns)
    }

    /// Sorts by `column`, best first where the column says which way is better.
    public mutating func sort(by column: Int?, columns: [TrialColumn]) {
        sortColumn = column
        descending = column.map { columns[$0].better == .higher } ?? false
    }

    public mutating func reverseSort() { if sortColumn != nil { descending.toggle() } }

    /// Moves the selection by `delta` rows in display order (selecting the first row when none is).
    public mutating func moveSelection(by delta: Int, rows: [TrialRow], columns: [TrialColumn]) {
        let ordered = sorted(rows, columns: columns)
        guard !ordered.isEmpty else { selectedID = nil; return }
        guard let id = selectedID, let i = ordered.firstIndex(where: { $0.id == id }) else {
            selectedID = ordered[delta < 0 ? ordered.count - 1 : 0].id
            return
        }
        selectedID = ordered[max(0, min(ordered.count - 1, i + delta))].id
    }

    /// `rows` in display order. Missing values go last in either direction; ties keep the rows' own order.
    public func sorted(_ rows: [TrialRow], columns: [TrialColumn]) -> [TrialRow] {
        guard let c = sortColumn, c < columns.count else { return rows }
        let desc = descending
        func value(_ r: TrialRow) -> TrialValue { c < r.cells.count ? r.cells[c] : .missing }
        return rows.enumerated().sorted { a, b in
            let va = value(a.element), vb = value(b.element)
            if let order = Self.order(va, vb, descending: desc) { return order }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// true when `a` goes before `b`, nil when they tie.
    static func order(_ a: TrialValue, _ b: TrialValue, descending: Bool) -> Bool? {
        let aMissing = a == .missing, bMissing = b == .missing
        if aMissing || bMissing { return aMissing == bMissing ? nil : bMissing }
        if case .state(let sa, let ta) = a, case .state(let sb, let tb) = b {
            if ta != tb { return (ta < tb) != descending }
            return sa == sb ? nil : (sa < sb) != descending
        }
        if let na = a.sortNumber, let nb = b.sortNumber {
            return na == nb ? nil : (na < nb) != descending
        }
        // A number sorts before text it cannot be compared with, in either direction.
        if (a.sortNumber == nil) != (b.sortNumber == nil) { return a.sortNumber != nil }
        let ta = a.text, tb = b.text
        return ta == tb ? nil : (ta < tb) != descending
    }
}

/// Column widths for a table `width` cells wide: each column as wide as its widest cell (or its fixed width), with
/// configuration columns cut first and the columns that still do not fit left off on the right.
struct TrialTableLayout {
    struct Slot { var column: Int; var width: Int }
    var visible: [(slot: Slot, x: Int)] = []
    var hiddenColumns = 0

    static let gap = 2

    init(columns: [TrialColumn], rows: [TrialRow], width: Int) {
        var widths = columns.indices.map { c -> Int in
            let header = columns[c].title.cellWidth + 1  // room for the sort arrow
            if rows.contains(where: { c < $0.cells.count && { if case .series = $0 { true } else { false } }($0.cells[c]) }) {
                return max(header, columns[c].maxWidth ?? 12)
            }
            let widest = rows.map { c < $0.cells.count ? $0.cells[c].text.cellWidth : 1 }.max() ?? 0
            let natural = max(header, widest)
            return columns[c].maxWidth.map { min(natural, max(header, $0)) } ?? natural
        }
        var total = widths.reduce(0, +) + Self.gap * max(0, columns.count - 1)
        // Cut the widest configuration column of text one cell at a time, down to its title's width (a number cut
        // short would read as another number).
        let textOnly = columns.indices.map { c in
            !rows.contains { c < $0.cells.count && { if case .number = $0 { true } else { false } }($0.cells[c]) }
        }
        while total > width {
            let cuttable = columns.indices.filter {
                columns[$0].role == .configuration && textOnly[$0] && widths[$0] > max(6, columns[$0].title.cellWidth + 1)
            }
            guard let c = cuttable.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[c] -= 1; total -= 1
        }
        var x = 0
        for c in columns.indices {
            let room = c == columns.count - 1 ? width - x : width - x - 1  // keep a cell for the "more" mark
            if widths[c] > room { hiddenColumns = columns.count - c; break }
            visible.append((Slot(column: c, width: widths[c]), x))
            x += widths[c] + Self.gap
        }
    }
}
