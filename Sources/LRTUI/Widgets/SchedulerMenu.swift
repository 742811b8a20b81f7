/// A scheduler the run can switch to, with its parameters (from `RunSource.schedulerKinds()`, asked when `s` opens).
public struct SchedulerKind: Equatable, Sendable {
    public var name: String
    /// What it does (wrapped in the menu, never cut).
    public var summary: String
    public var parameters: [SchedulerParameter]
    /// A `->` sequence: its one field holds the whole spec (`warmup:steps=100 -> cosine`).
    public var isSequence: Bool

    public init(name: String, summary: String = "", parameters: [SchedulerParameter] = [], isSequence: Bool = false) {
        self.name = name; self.summary = summary; self.parameters = parameters; self.isSequence = isSequence
    }
}

public struct SchedulerParameter: Equatable, Sendable {
    public var name: String
    /// The text the field starts with.
    public var defaultValue: String
    public var help: String
    /// Shown dimmed in an empty field: what the scheduler uses when the spec leaves the parameter out.
    public var placeholder: String

    public init(name: String, defaultValue: String, help: String = "", placeholder: String = "") {
        self.name = name; self.defaultValue = defaultValue; self.help = help; self.placeholder = placeholder
    }
}

public enum SchedulerMenuEvent: Equatable, Sendable {
    case none
    /// Enter: the spec to send as `sched SPEC`.
    case apply(String)
    case cancel
}

/// The `s` menu: pick a kind (↑/↓), edit its parameters as text fields (tab moves between them), enter applies.
public struct SchedulerMenuState: Equatable, Sendable {
    public enum Focus: Equatable, Sendable {
        case list
        case field(Int)
    }

    public var kinds: [SchedulerKind]
    public private(set) var selected: Int
    /// Field texts per kind, per parameter (kept when moving between kinds).
    public private(set) var values: [[String]]
    public private(set) var focus: Focus
    /// Why the last spec was rejected.
    public var error: String?

    /// `current` (a kind name, or a spec `kind:k=v,...`) preselects that kind and fills its fields.
    public init(kinds: [SchedulerKind], current: String? = nil) {
        self.kinds = kinds
        self.values = kinds.map { $0.parameters.map(\.defaultValue) }
        self.selected = 0
        self.focus = .list
        // A sequence is not preselected: its parts' options cannot be edited as one kind's fields.
        if let current, !current.contains("->") {
            let parts = current.split(separator: ":", maxSplits: 1)
            let name = parts.first.map(String.init) ?? current
            if let i = kinds.firstIndex(where: { $0.name == name }) {
                selected = i
                if parts.count == 2 {
                    for kv in parts[1].split(separator: ",") {
                        let p = kv.split(separator: "=", maxSplits: 1).map(String.init)
                        if p.count == 2, let j = kinds[i].parameters.firstIndex(where: { $0.name == p[0] }) {
                            values[i][j] = p[1]
                        }
                    }
                }
            }
        }
    }

    public var selectedKind: SchedulerKind? { kinds.indices.contains(selected) ? kinds[selected] : nil }

    /// `kind` or `kind:p1=v1,p2=v2` with the non-empty fields, in parameter order.
    public var spec: String {
        guard let kind = selectedKind else { return "" }
        if kind.isSequence { return values[selected].first?.trimmingSpaces() ?? "" }
        let params = zip(kind.parameters, values[selected])
            .map { ($0.name, $1.trimmingSpaces()) }
            .filter { !$0.1.isEmpty }
            .map { "\($0.0)=\($0.1)" }
        return params.isEmpty ? kind.name : kind.name + ":" + params.joined(separator: ",")
    }

    public mutating func handle(_ key: Key) -> SchedulerMenuEvent {
        guard !kinds.isEmpty else { return key == .escape || key == .enter ? .cancel : .none }
        let fieldCount = kinds[selected].parameters.count
        switch (key, focus) {
        case (.escape, _): return .cancel
        case (.enter, _): return .apply(spec)
        case (.up, .list), (.char("k"), .list):
            selected = (selected + kinds.count - 1) % kinds.count; error = nil
        case (.down, .list), (.char("j"), .list):
            selected = (selected + 1) % kinds.count; error = nil
        case (.tab, .list), (.right, .list):
            if fieldCount > 0 { focus = .field(0) }
        case (.tab, .field(let i)), (.down, .field(let i)):
            focus = i + 1 < fieldCount ? .field(i + 1) : (key == .tab ? .list : .field(i))
        case (.backTab, .field(let i)), (.up, .field(let i)):
            focus = i > 0 ? .field(i - 1) : .list
        case (.backTab, .list):
            if fieldCount > 0 { focus = .field(fieldCount - 1) }
        case (.backspace, .field(let i)):
            if !values[selected][i].isEmpty { values[selected][i].removeLast() }
            error = nil
        case (.ctrl("u"), .field(let i)):
            values[selected][i] = ""
            error = nil
        case (.char(let c), .field(let i)):
            values[selected][i].append(c)
            error = nil
        case (.left, .field):
            focus = .list
        default: break
        }
        return .none
    }
}

/// Draws the scheduler menu as a centred box. Summaries and help wrap rather than being cut; at 80 columns
/// everything fits.
public struct SchedulerMenuView: Widget {
    public var state: SchedulerMenuState
    public var palette: Palette

    public init(state: SchedulerMenuState, palette: Palette) { self.state = state; self.palette = palette }

    static let fieldWidth = 16
    static let keyHints = ["↑↓ kind  tab fields  type to edit  enter apply  esc cancel",
                           "↑↓ kind  tab fields  enter apply  esc cancel", "tab fields  enter apply"]

    /// The right column's rows: the summary, a gap, then each parameter with its help wrapped beside the field
    /// (under it when the column is too narrow). `param` is the index of the parameter a row shows, if any.
    struct ParameterRow { var param: Int?; var help: String; var text: String = "" }

    static func rightRows(_ kind: SchedulerKind, width: Int) -> (rows: [ParameterRow], nameWidth: Int) {
        var rows = kind.summary.wrapped(toWidth: width).map { ParameterRow(param: nil, help: "", text: $0) }
        if !rows.isEmpty && !kind.parameters.isEmpty { rows.append(ParameterRow(param: nil, help: "")) }
        let nameWidth = min(width / 2, kind.parameters.map(\.name.cellWidth).max() ?? 4)
        let helpX = nameWidth + 3 + (kind.isSequence ? 0 : fieldWidth + 1)
        for (j, p) in kind.parameters.enumerated() {
            if kind.isSequence || width - helpX < 12 {
                rows.append(ParameterRow(param: j, help: ""))
                rows += p.help.wrapped(toWidth: width - 2).map { ParameterRow(param: nil, help: "", text: "  " + $0) }
            } else {
                let help = p.help.wrapped(toWidth: width - helpX)
                rows.append(ParameterRow(param: j, help: help.first ?? ""))
                rows += help.dropFirst().map { ParameterRow(param: nil, help: $0) }
            }
        }
        return (rows, nameWidth)
    }

    public func render(into buffer: inout Buffer, area: Rect) {
        let kinds = state.kinds
        let listWidth = min(18, max(8, (kinds.map(\.name.cellWidth).max() ?? 6) + 4))
        // As wide as 80 columns allow: 2 of margin, 2 of border, 2 of padding.
        let width = min(area.width, max(56, min(78, listWidth + 60)))
        let rightWidth = max(1, width - 4 - listWidth - 1)
        let kind = state.selectedKind
        let (rows, nameWidth) = kind.map { Self.rightRows($0, width: rightWidth) } ?? ([], 0)
        let height = min(area.height, max(kinds.count, rows.count) + 5)
        let box = area.centered(width: width, height: height)
        Clear(style: palette.background).render(into: &buffer, area: box)
        let block = Block(title: "scheduler", rightTitle: "enter apply · esc cancel", titleStyle: palette.title,
                          rightTitleStyle: palette.inactive, borderStyle: palette.highlight)
        block.render(into: &buffer, area: box)
        let inner = block.inner(box).inset(left: 1, right: 1)
        guard inner.height >= 3, inner.width >= 10 else { return }
        let body = Rect(x: inner.x, y: inner.y, width: inner.width, height: inner.height - 3)
        let cols = body.split(.horizontal, [.length(listWidth), .fill(1)], spacing: 1)
        // Kinds.
        for (i, k) in kinds.enumerated() where i < cols[0].height {
            let isSel = i == state.selected
            let marker = isSel ? "▸ " : "  "
            var style = isSel ? (state.focus == .list ? palette.selected : palette.highlight.bold) : palette.text
            if isSel && state.focus != .list { style = palette.highlight.bold }
            let row = cols[0].row(i)
            if isSel && state.focus == .list { buffer.fill(row, style: palette.selected) }
            buffer.set(string: (marker + k.name).truncated(toWidth: row.width), at: Position(x: row.x, y: row.y),
                       style: style, clip: row)
        }
        // The selected kind: summary, parameters and their help.
        let right = cols[1]
        if let kind {
            for (i, r) in rows.enumerated() where i < right.height {
                let row = right.row(i)
                guard let j = r.param else {
                    let x = r.text.isEmpty ? row.x + nameWidth + 3 + Self.fieldWidth + 1 : row.x
                    buffer.set(string: r.text.isEmpty ? r.help : r.text, at: Position(x: x, y: row.y),
                               style: palette.inactive, clip: row)
                    continue
                }
                let p = kind.parameters[j]
                let focused = state.focus == .field(j)
                buffer.set(string: p.name.leftPadded(toWidth: nameWidth) + " = ", at: Position(x: row.x, y: row.y),
                           style: palette.text, clip: row)
                let fieldX = row.x + nameWidth + 3
                let field = Rect(x: fieldX, y: row.y, width: kind.isSequence ? row.right - fieldX : min(Self.fieldWidth, row.right - fieldX),
                                 height: 1)
                buffer.fill(field, style: focused ? palette.selected : palette.field)
                let text = state.values[state.selected][j]
                if text.isEmpty && !p.placeholder.isEmpty {
                    buffer.set(string: (focused ? "▏" : "") + p.placeholder.truncated(toWidth: field.width - 1),
                               at: Position(x: field.x, y: field.y), style: palette.inactive, clip: field)
                } else {
                    // The end of a long value stays in view: that is where typing goes.
                    let shown = text + (focused ? "▏" : "")
                    let tail = shown.cellWidth > field.width ? "…" + String(shown.suffix(field.width - 1)) : shown
                    buffer.set(string: tail, at: Position(x: field.x, y: field.y),
                               style: focused ? palette.selected : palette.highlight, clip: field)
                }
                if !r.help.isEmpty {
                    buffer.set(string: r.help, at: Position(x: field.right + 1, y: row.y), style: palette.inactive, clip: row)
                }
            }
        }
        // Spec, error, keys.
        let specRow = inner.row(inner.height - 3)
        TextLine([Span("sched ", palette.inactive), Span(state.spec, palette.highlight.bold)])
            .truncated(toWidth: specRow.width).render(into: &buffer, at: Position(x: specRow.x, y: specRow.y), clip: specRow)
        let errRow = inner.row(inner.height - 2)
        if let e = state.error {
            buffer.set(string: ("✗ " + e).truncated(toWidth: errRow.width), at: Position(x: errRow.x, y: errRow.y),
                       style: palette.error, clip: errRow)
        }
        let keysRow = inner.row(inner.height - 1)
        let keys = Self.keyHints.first { $0.cellWidth <= keysRow.width } ?? Self.keyHints.last!
        buffer.set(string: keys.truncated(toWidth: keysRow.width), at: Position(x: keysRow.x, y: keysRow.y),
                   style: palette.inactive, clip: keysRow)
    }
}

extension String {
    /// Words wrapped into lines of at most `width` cells; a word longer than a line is cut into pieces.
    func wrapped(toWidth width: Int) -> [String] {
        guard width > 0 else { return [] }
        var lines: [String] = []
        var line = ""
        for word in split(separator: " ") {
            var w = String(word)
            while w.cellWidth > width {
                if !line.isEmpty { lines.append(line); line = "" }
                lines.append(String(w.prefix(width)))
                w = String(w.dropFirst(width))
            }
            if line.isEmpty { line = w } else if line.cellWidth + 1 + w.cellWidth <= width { line += " " + w } else {
                lines.append(line); line = w
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
