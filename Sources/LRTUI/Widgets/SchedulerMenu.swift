/// A scheduler the run can switch to, with its parameters (from `LiveStatus.schedulerKinds`).
public struct SchedulerKind: Equatable, Sendable {
    public var name: String
    /// One line: what it does.
    public var summary: String
    public var parameters: [SchedulerParameter]

    public init(name: String, summary: String = "", parameters: [SchedulerParameter] = []) {
        self.name = name; self.summary = summary; self.parameters = parameters
    }
}

public struct SchedulerParameter: Equatable, Sendable {
    public var name: String
    /// The text the field starts with.
    public var defaultValue: String
    public var help: String

    public init(name: String, defaultValue: String, help: String = "") {
        self.name = name; self.defaultValue = defaultValue; self.help = help
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
        if let current {
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

/// Draws the scheduler menu as a centred box.
public struct SchedulerMenuView: Widget {
    public var state: SchedulerMenuState
    public var palette: Palette

    public init(state: SchedulerMenuState, palette: Palette) { self.state = state; self.palette = palette }

    public func render(into buffer: inout Buffer, area: Rect) {
        let kinds = state.kinds
        let listWidth = min(18, max(8, (kinds.map(\.name.cellWidth).max() ?? 6) + 4))
        let params = state.selectedKind?.parameters ?? []
        let fieldRows = max(kinds.count, params.count + 2)
        let height = min(area.height, fieldRows + 6)
        let width = min(area.width, max(56, listWidth + 40))
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
        // Parameters of the selected kind.
        let right = cols[1]
        if let kind = state.selectedKind {
            if right.height > 0 {
                buffer.set(string: kind.summary.truncated(toWidth: right.width), at: Position(x: right.x, y: right.y),
                           style: palette.inactive, clip: right)
            }
            let nameWidth = min(right.width / 2, (params.map(\.name.cellWidth).max() ?? 4))
            for (j, p) in params.enumerated() where j + 2 < right.height {
                let row = right.row(j + 2)
                let focused = state.focus == .field(j)
                buffer.set(string: p.name.leftPadded(toWidth: nameWidth) + " = ", at: Position(x: row.x, y: row.y),
                           style: palette.text, clip: row)
                let fieldX = row.x + nameWidth + 3
                let field = Rect(x: fieldX, y: row.y, width: min(16, row.right - fieldX), height: 1)
                buffer.fill(field, style: focused ? palette.selected : palette.field)
                let value = state.values[state.selected][j] + (focused ? "▏" : "")
                buffer.set(string: value.truncated(toWidth: field.width), at: Position(x: field.x, y: field.y),
                           style: focused ? palette.selected : palette.highlight, clip: field)
                if !p.help.isEmpty && field.right + 1 < row.right {
                    buffer.set(string: p.help, at: Position(x: field.right + 1, y: row.y), style: palette.inactive,
                               clip: row.intersection(Rect(x: field.right + 1, y: row.y, width: row.right, height: 1)))
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
        buffer.set(string: "↑↓ kind  tab fields  type to edit  enter apply  esc cancel".truncated(toWidth: keysRow.width),
                   at: Position(x: keysRow.x, y: keysRow.y), style: palette.inactive, clip: keysRow)
    }
}
