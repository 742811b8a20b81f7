import LRCommand

/// `lrtop runs`: every live run in one table, htop's way: move, tag, act on the tagged runs, open one's dashboard
/// and come back. The data comes from a `RunsSource`; this screen only keeps what the person changed.
public final class RunsScreen: Screen {
    /// Below this the screen says so instead of drawing a table nobody can read.
    public static let minimumSize = (width: 40, height: 8)

    public enum Overlay: Equatable {
        case none, help
        case prompt(PromptState)
        case filter(PromptState)
        /// F6: the columns to sort by, the highlighted one.
        case sortMenu(Int)
        case stacks(StacksView)
    }

    /// The stacks of one run (every rank of a job), as they arrive, scrolled.
    public struct StacksView: Equatable {
        public var id: String
        public var name: String
        public var ranks: Int
        public var results: [RunsStacks] = []
        public var scroll = 0

        public var lines: [(text: String, kind: LineKind)] {
            var out: [(String, LineKind)] = []
            for r in results.sorted(by: { $0.rank < $1.rank }) {
                if ranks > 1 { out.append(("rank \(r.rank)", .heading)) }
                if let e = r.error { out.append(("  ✗ " + e, .error)); continue }
                for t in r.threads {
                    out.append(((ranks > 1 ? "  " : "") + "thread " + t.name + (t.isMain ? " (main)" : ""), .heading))
                    if let phase = t.phase { out.append(("    " + phase, .code)) }
                    for f in t.frames {
                        out.append(("    " + f.file + ":\(f.line) in " + f.function, .frame))
                        if let c = f.code, !c.isEmpty { out.append(("        " + c, .code)) }
                    }
                }
            }
            if results.count < ranks {
                out.append(("asking " + (ranks > 1 ? "\(ranks - results.count) more rank(s)" : "the run") + " for its stacks…", .waiting))
            }
            return out
        }

        public enum LineKind: Equatable { case heading, frame, code, error, waiting }
    }

    let source: any RunsSource
    public private(set) var rows: [RunsRow] = []
    public internal(set) var state = RunsTableState()
    public internal(set) var overlay: Overlay = .none
    /// Each run's note from the last command sent from the table: nil ok while it is awaited.
    public private(set) var notes: [String: RunsRowNote] = [:]
    /// The last command sent and to how many runs, for the summary line.
    public private(set) var lastSent: (command: String, count: Int)?
    public private(set) var notice: (text: String, isError: Bool)?
    /// The dashboard opened from the table (Enter, `o`), shown instead of the table until it is closed.
    public private(set) var child: RunsChild?
    var palette: Palette
    var theme: Theme
    var depth: ColorDepth = .truecolor
    var options = TUIOptions()
    var commandHistory: [String] = []
    /// Where the last frame put the table's body rows and header, to find what a click lands on.
    var lastTableArea: Rect?

    public init(source: any RunsSource, theme: Theme = .builtinDefault, depth: ColorDepth = .truecolor) {
        self.source = source; self.theme = theme; self.depth = depth
        palette = Palette(theme: theme, depth: depth)
        rows = source.snapshot()
        state.keepSelection(in: display)
    }

    public func begin(depth: ColorDepth, options: TUIOptions) {
        self.depth = depth
        palette = Palette(theme: theme, depth: depth)
        var o = options
        o.startupNotice = nil; o.findLRAtStart = nil
        self.options = o
    }

    public var hasFinished: Bool { false }

    var display: [RunsRow] { state.displayRows(rows) }

    public func update() -> Bool {
        var changed = child?.dashboard.update() ?? false
        let now = source.snapshot()
        if now != rows { rows = now; changed = true; state.keepSelection(in: display) }
        for a in source.drainAnswers() {
            notes[a.id] = RunsRowNote(text: a.message, ok: a.ok)
            changed = true
        }
        let stacks = source.drainStacks()
        if !stacks.isEmpty, case .stacks(var view) = overlay {
            view.results += stacks.filter { $0.id == view.id }
            overlay = .stacks(view)
            changed = true
        }
        return changed
    }

    // MARK: keys

    public func handle(_ key: Key) -> ScreenAction {
        if let child { return handleInChild(key, child) }
        if key == .resize { return .none }
        if key == .ctrl("c") { return .quit }
        switch overlay {
        case .help:
            overlay = .none
            return .none
        case .prompt(var p):
            switch p.handle(key) {
            case .none: overlay = .prompt(p)
            case .cancel: overlay = .none
            case .submit(let text):
                if commandHistory.last != text { commandHistory.append(text) }
                if let error = sendToTargets(text) { p.error = error; overlay = .prompt(p) } else { overlay = .none }
            }
            return .none
        case .filter(var p):
            switch p.handle(key) {
            case .none:
                // The table narrows as the filter is typed.
                state.filter = p.text
                overlay = .filter(p)
            case .cancel: state.filter = ""; overlay = .none
            case .submit(let text): state.filter = text; overlay = .none
            }
            state.keepSelection(in: display)
            return .none
        case .sortMenu(let i):
            let all = RunsColumn.allCases
            switch key {
            case .up: overlay = .sortMenu(max(0, i - 1))
            case .down: overlay = .sortMenu(min(all.count - 1, i + 1))
            case .enter: state.sort(by: all[i]); overlay = .none
            case .escape, .function(6), .char("q"): overlay = .none
            default: break
            }
            return .none
        case .stacks(var view):
            let count = view.lines.count
            switch key {
            case .up: view.scroll -= 1
            case .down: view.scroll += 1
            case .pageUp: view.scroll -= 10
            case .pageDown: view.scroll += 10
            case .home: view.scroll = 0
            case .end: view.scroll = count
            case .char("S"):
                view.results = []; view.scroll = 0
                source.requestStacks(of: view.id)
            case .escape, .char("q"), .enter:
                overlay = .none
                return .none
            default: break
            }
            view.scroll = max(0, min(view.scroll, count - 1))  // the view clamps it to a full page
            overlay = .stacks(view)
            return .none
        case .none:
            break
        }
        notice = nil
        if case .mouse(let m) = key { handle(mouse: m); return .none }
        guard let action = RunsKeyMap.action(for: key) else { return .none }
        return perform(action)
    }

    /// Keys go to the opened dashboard; esc (with nothing open in it) or its quit come back to the table.
    func handleInChild(_ key: Key, _ child: RunsChild) -> ScreenAction {
        let d = child.dashboard
        let atRest = d.overlay == .none && d.focus == nil && !d.metricsView.isOpen
        if (key == .escape && atRest) || d.handle(key) == .quit {
            child.close()
            self.child = nil
            return .redraw
        }
        return .none
    }

    public func perform(_ action: RunsAction) -> ScreenAction {
        let shown = display
        switch action {
        case .move(let d): state.moveSelection(by: d, in: shown)
        case .page(let d): state.moveSelection(by: d * max(1, pageHeight), in: shown)
        case .first: state.selectedID = shown.first?.id
        case .last: state.selectedID = shown.last?.id
        case .tag:
            if let id = selectedJobID {
                if state.tagged.contains(id) { state.tagged.remove(id) } else { state.tagged.insert(id) }
            }
            state.moveSelection(by: 1, in: shown)
        case .tagAll:
            state.tagged.formUnion(shown.filter { $0.rank == nil }.map(\.id))
            show("\(state.tagged.count) tagged")
        case .untagAll:
            state.tagged = []
        case .sortMenu:
            overlay = .sortMenu(state.sortColumn?.rawValue ?? 0)
        case .shiftSort(let d):
            state.shiftSort(by: d)
            show(state.sortColumn.map { "sorted by \($0.title)" + (state.descending ? ", highest first" : "") } ?? "unsorted: newest first")
        case .invertSort:
            state.descending.toggle()
        case .filter:
            overlay = .filter(PromptState(text: state.filter, hint: "words in name, kind, state or host"))
        case .clearFilter:
            state.filter = ""
            state.keepSelection(in: display)
        case .open:
            guard let id = selectedJobID else { show("no run selected", error: true); break }
            open(source.dashboard(for: id))
        case .overlay:
            let ids = targets
            guard !ids.isEmpty else { show("tag runs with space first (or select one)", error: true); break }
            open(source.overlay(of: ids))
        case .expand, .collapse:
            guard let row = selectedRow else { break }
            let job = row.rank == nil ? row : rows.first { $0.ranks.contains { $0.id == row.id } }
            guard let job, job.isJob else {
                if action == .expand { show("only a DDP job has ranks to expand") }
                break
            }
            if action == .expand { state.expanded.insert(job.id) } else { state.expanded.remove(job.id); state.selectedID = job.id }
        case .prompt:
            guard !targets.isEmpty else { show("no run to send to", error: true); break }
            overlay = .prompt(PromptState(hint: targetHint, history: commandHistory))
        case .togglePause:
            let chosen = rows.filter { targets.contains($0.id) }
            let paused = chosen.filter { $0.state == "paused" }.map(\.id)
            let others = chosen.filter { $0.state != "paused" }.map(\.id)
            clearNotes()
            if !others.isEmpty { send(Command.pause.description, to: others) }
            if !paused.isEmpty { send(Command.resume.description, to: paused) }
            lastSent = (paused.isEmpty ? "pause" : others.isEmpty ? "resume" : "pause/resume", paused.count + others.count)
        case .send(let text):
            if let error = sendToTargets(text) { show("✗ \(text): \(error)", error: true) }
        case .stacks:
            guard let row = selectedJob else { show("no run selected", error: true); break }
            overlay = .stacks(StacksView(id: row.id, name: row.name, ranks: max(1, row.ranks.count)))
            source.requestStacks(of: row.id)
        case .help: overlay = .help
        case .redraw: return .redraw
        case .quit: return .quit
        }
        return .none
    }

    func open(_ result: Result<RunsChild, RunsSourceError>) {
        switch result {
        case .success(let c):
            c.dashboard.begin(depth: depth, options: options)
            child = c
        case .failure(let e):
            show(e.description, error: true)
        }
    }

    /// Checks the command with the steering language's parser (a typo is refused once, here, not by every run),
    /// then sends it to every target.
    func sendToTargets(_ text: String) -> String? {
        do {
            _ = try CommandParser.parse(text)
        } catch {
            return "\(error)"
        }
        let ids = targets
        guard !ids.isEmpty else { return "no run to send to: tag runs with space, or select one" }
        clearNotes()
        send(text, to: ids)
        lastSent = (text, ids.count)
        return nil
    }

    func send(_ text: String, to ids: [String]) {
        for id in ids { notes[id] = RunsRowNote(text: text, ok: nil) }
        source.send(text, to: ids)
    }

    /// A new command: the answers to the last one go (the rows show one command's answers at a time).
    func clearNotes() { notes = [:] }

    /// The tagged runs still in the table, in display order; else the selected one (a rank's job).
    public var targets: [String] {
        let tagged = rows.filter { state.tagged.contains($0.id) }.map(\.id)
        if !tagged.isEmpty { return tagged }
        return selectedJobID.map { [$0] } ?? []
    }

    var targetHint: String {
        let t = targets
        if t.count == 1, let row = rows.first(where: { $0.id == t[0] }) { return "to " + row.name }
        return "to \(t.count) tagged runs"
    }

    var selectedRow: RunsRow? {
        guard let id = state.selectedID else { return nil }
        return display.first { $0.id == id }
    }

    /// The selected run, or the job of a selected rank (commands go to the job).
    var selectedJob: RunsRow? {
        guard let row = selectedRow else { return nil }
        if row.rank == nil { return row }
        return rows.first { $0.ranks.contains { $0.id == row.id } }
    }

    var selectedJobID: String? { selectedJob?.id }

    var pageHeight: Int { max(1, (lastTableArea?.height ?? 10) - 1) }

    func show(_ text: String, error: Bool = false) { notice = (text, error) }

    /// A line under the table until the next key (a theme warning, a registry note).
    public func notify(_ text: String) { show(text) }

    func handle(mouse m: MouseEvent) {
        guard let area = lastTableArea, area.contains(x: m.x, y: m.y) else { return }
        switch m.kind {
        case .wheelUp: state.moveSelection(by: -3, in: display)
        case .wheelDown: state.moveSelection(by: 3, in: display)
        case .click:
            let shown = display
            if m.y == area.y {
                // A click on a column's title sorts by it (again: reverses), as in htop.
                let layout = RunsTableLayout(rows: shown, notes: notes, width: area.width - RunsTable.markWidth)
                let x = m.x - area.x - RunsTable.markWidth
                if let hit = layout.visible.first(where: { x >= $0.x && x < $0.x + $0.width + RunsTableLayout.gap }) {
                    state.sort(by: hit.column)
                }
                return
            }
            let selected = state.selectedID.flatMap { id in shown.firstIndex { $0.id == id } }
            let top = EventList.scroll(state.scroll, keeping: selected, height: area.height - 1, count: shown.count)
            let i = top + m.y - area.y - 1
            if shown.indices.contains(i) { state.selectedID = shown[i].id }
        }
    }
}

/// What a run said to the last command from the table: the answer, or the command while it is awaited (ok nil).
public struct RunsRowNote: Equatable, Sendable {
    public var text: String
    public var ok: Bool?
    public init(text: String, ok: Bool?) { self.text = text; self.ok = ok }
}
