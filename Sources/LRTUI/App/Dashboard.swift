import LRCommand
import LRLog

/// The dashboard's state and what keys do to it. Drawing is in DashboardView.swift, the layout in
/// DashboardLayout.swift, the key table in Input/KeyMap.swift.
public final class Dashboard {
    /// Below this the dashboard shows only the too-small message.
    public static let minimumSize = (width: 60, height: 18)

    /// The step ranges `z` cycles through.
    public enum Zoom: Equatable, Sendable, CustomStringConvertible {
        /// The steps so far, with a little of the planned schedule ahead.
        case run
        /// The whole planned run (0 ... total steps).
        case full
        /// The last n steps.
        case last(Int)

        public var description: String {
            switch self {
            case .run: return "run"
            case .full: return "full"
            case .last(let n): return "last " + Ticks.stepLabel(n)
            }
        }
    }

    public static let zoomLevels: [Zoom] = [.run, .full, .last(2000), .last(200)]

    public enum Overlay: Equatable, Sendable {
        case none
        case help
        case prompt(PromptState)
        case schedulerMenu(SchedulerMenuState)
        case confirmQuit
        /// One event in full (its whole message, a checkpoint's path).
        case eventDetail(EventRecord)
        /// The LR range test's curve and suggestions (`findLR` holds its state).
        case findLR
    }

    /// The panels that take focus (tab, or a click): a chart gets a cursor (←/→), the events list a selection
    /// (↑/↓, enter opens one).
    public enum Panel: Equatable, Sendable, CaseIterable {
        case lrChart, lossChart, events
    }

    /// A one-line message on the key bar until the next key, or a few seconds (errors stay until a key).
    public struct Notice: Equatable, Sendable {
        public enum Kind: Sendable { case info, warning, error }
        public var text: String
        public var kind: Kind
        public var shownAt: ContinuousClock.Instant
    }

    /// How long info notices stay on the key bar.
    public static let noticeDuration = Duration.seconds(4)

    public static let quitQuestion = "quit? training is still running (y/n)"

    /// The runs drawn: the first is steered by the keys, the others are overlaid.
    public private(set) var runs: [RunModel]
    public var primary: RunModel { runs[0] }
    public private(set) var theme: Theme
    public private(set) var depth: ColorDepth
    public private(set) var palette: Palette
    public var themeStore: ThemeStore?
    public internal(set) var overlay: Overlay = .none
    /// The find-lr panel's state while it is open.
    public internal(set) var findLR: FindLRSession?
    /// The param group the LR keys act on; nil: all groups.
    public private(set) var selectedGroup: Int?
    public private(set) var lrScale: AxisScale = .log
    public private(set) var lossScale: AxisScale = .linear
    public private(set) var zoomIndex = 0
    public private(set) var smoothingIndex = 1
    public private(set) var notice: Notice?
    public internal(set) var commandHistory: [String] = []
    public private(set) var focus: Panel?
    /// The step under the charts' cursor (a focused chart's ←/→, or a click on a chart).
    public internal(set) var chartCursor: Int?
    /// The selected event, counted from the latest (0), while the events list has focus.
    public private(set) var selectedEvent: Int?
    /// Rows the events list is scrolled down from the latest.
    public private(set) var eventScroll = 0
    /// Where the last frame put the panels and the charts' plots, to find what a click lands on.
    var lastLayout: DashboardLayout?
    var lastPlots: [Panel: Rect] = [:]
    /// Called when the person changes the theme, zoom or smoothing (to remember them between sessions).
    public var onViewChange: ((ViewPreferences) -> Void)?
    /// Commands sent to a live run that it has not answered yet, by id (oldest first). The run applies them at
    /// its next step boundary and answers each by its id: applied, or rejected with the reason.
    public private(set) var awaitingAnswer: [(id: Int, text: String)] = []
    /// Branch sub-run logs already overlaid (live), and how many of the primary's events were looked at for forks.
    var followedBranchLogs: Set<String> = []
    var eventsSeenForBranches = 0
    /// The branches table's sort column and direction (`B` cycles).
    public internal(set) var branchTable = TrialTableState()
    /// The id of the last command sent.
    var lastSentID: Int?
    /// The status panel as last built, and whether something it shows changed since (a record, a status, a key).
    var statusPanel: StatusPanel?
    var statusIsStale = true
    /// The metrics grid (`m`), and where its last frame put its charts.
    public internal(set) var metricsView = MetricsView()
    var lastGridLayout: MetricsGridLayout?
    var lastGridPlots: [Int: Rect] = [:]

    public init(source: any RunSource, overlays: [any RunSource] = [], theme: Theme = .builtinDefault,
                depth: ColorDepth = .truecolor, themeStore: ThemeStore? = nil) {
        runs = [RunModel(source: source)] + overlays.map { RunModel(source: $0) }
        self.theme = theme
        self.depth = depth
        self.palette = Palette(theme: theme, depth: depth)
        self.themeStore = themeStore
    }

    /// A dashboard over runs that are already built (replay of logs read in bulk).
    public init(runs: [RunModel], theme: Theme = .builtinDefault, depth: ColorDepth = .truecolor,
                themeStore: ThemeStore? = nil) {
        precondition(!runs.isEmpty, "a dashboard needs at least one run")
        self.runs = runs
        self.theme = theme
        self.depth = depth
        self.palette = Palette(theme: theme, depth: depth)
        self.themeStore = themeStore
    }

    /// Adds a run to overlay (distinct colour, legend entry).
    public func addOverlay(_ run: RunModel) { runs.append(run) }

    public var zoom: Zoom { Self.zoomLevels[zoomIndex] }
    public var smoothingWeight: Double { RunModel.smoothingWeights[smoothingIndex] }
    public var status: LiveStatus { primary.status }
    public var isLive: Bool { primary.source?.isLive ?? false }

    /// The keys that apply: live training, a replay (the source gives a cursor), or a watched log.
    public var keyMode: KeyMode { isLive ? .live : (status.cursor != nil ? .replay : .watch) }

    /// What the x axis counts: steps, or wall time (`lrtop replay --align walltime`).
    public var xAxis: XAxis = .steps

    /// Whether quitting should ask first: a live run that is still training.
    public var trainingStillRunning: Bool {
        isLive && (primary.source?.quitEndsRun ?? false) && status.state.isActive && primary.end == nil
    }

    public func setTheme(_ theme: Theme) {
        self.theme = theme
        palette = Palette(theme: theme, depth: depth)
        statusIsStale = true
    }

    public func setDepth(_ depth: ColorDepth) {
        self.depth = depth
        palette = Palette(theme: theme, depth: depth)
        statusIsStale = true
    }

    public func showNotice(_ text: String, _ kind: Notice.Kind = .info) {
        notice = Notice(text: text, kind: kind, shownAt: ContinuousClock.now)
    }

    /// Drains every run's source and refreshes statuses; returns whether anything changed.
    @discardableResult
    public func update() -> Bool {
        var changed = false
        for r in runs where r.poll() { changed = true }
        if answerAwaitedCommands() { changed = true }
        if let source = primary.source {
            for w in source.takeWarnings() { showNotice(w, .error); changed = true }
        }
        if followNewBranches() { changed = true }
        if updateFindLR() { changed = true }
        if let n = notice, n.kind != .error, ContinuousClock.now - n.shownAt > Self.noticeDuration {
            notice = nil
            changed = true
        }
        if let g = selectedGroup, g >= primary.groupNames.count { selectedGroup = nil }
        if changed { statusIsStale = true }
        return changed
    }

    /// Shows the run's answer to a command sent from here where the person is looking, the key bar: a rejection
    /// as `✗ COMMAND: WHY` (whole, wrapped over more rows when long), an applied command as `✓ COMMAND  WHAT CHANGED`.
    /// Answers come back by the command's id, from every kind of source alike.
    func answerAwaitedCommands() -> Bool {
        guard let source = primary.source else { return false }
        var changed = false
        for reply in source.takeReplies() {
            if findLR?.commandID == reply.id { findLRAnswered(reply); changed = true }
            guard let i = awaitingAnswer.firstIndex(where: { $0.id == reply.id }) else { continue }
            awaitingAnswer.remove(at: i)
            showNotice(Self.answerText(reply, groups: primary.groupNames), reply.outcome == .applied ? .info : .error)
            changed = true
        }
        return changed
    }

    /// The one wording of a command's answer, whatever ran it (a run trained here, an attached PyTorch run):
    /// `✓ COMMAND: WHAT CHANGED · NOTE (at step N)` or `✗ COMMAND: WHY (at step N)`, from the event the run logged
    /// (or the typed answer it sent) through `EventList.detail`:
    /// `✓ lr *2: lr 1.00e-3→2.00e-3 (at step 86)`, `✓ ckpt: saved runs/a/checkpoints/step-00000086.ckpt (at step 86)`,
    /// `✗ lr head 1e-3: no param group 'head' (at step 14)`. A command refused before it reached the run has no step.
    public static func answerText(_ reply: CommandReply, groups: [String] = []) -> String {
        let step = reply.event?.step ?? reply.step
        let at = step.map { " (at step " + Format.grouped($0) + ")" } ?? ""
        switch reply.outcome {
        case .rejected(let why): return "✗ " + reply.text + ": " + why + at
        case .applied:
            let detail = reply.event.map { EventList.detail($0, groups: groups) } ?? reply.message ?? ""
            return "✓ " + reply.text + (detail.isEmpty ? "" : ": " + detail) + at
        }
    }

    // MARK: keys

    /// Handles a key: overlays first, then the key table.
    public func handle(_ key: Key) -> ScreenAction {
        statusIsStale = true
        if key == .resize { return .none }
        if key == .ctrl("c") { return .quit }
        if case .mouse(let m) = key { return handle(mouse: m) }
        switch overlay {
        case .prompt(var p):
            switch p.handle(key) {
            case .none: overlay = .prompt(p)
            case .cancel: overlay = .none
            case .submit(let text):
                if commandHistory.last != text { commandHistory.append(text) }
                if let error = submit(text) {
                    p.error = error
                    overlay = .prompt(p)
                }
            }
            return .none
        case .schedulerMenu(var m):
            switch m.handle(key) {
            case .none: overlay = .schedulerMenu(m)
            case .cancel: overlay = .none
            case .apply(let spec):
                let command = Command.sched(spec)
                if let error = steer(command) {
                    m.error = error
                    overlay = .schedulerMenu(m)
                } else {
                    commandHistory.append(command.description)
                    overlay = .none
                }
            }
            return .none
        case .help, .eventDetail:
            overlay = .none
            return .none
        case .findLR:
            handleFindLR(key)
            return .none
        case .confirmQuit:
            if key == .char("y") || key == .char("Y") || key == .char("q") { return .quit }
            overlay = .none
            notice = nil
            return .none
        case .none:
            notice = nil
            if handleMetricsKey(key) || handleFocused(key) { return .none }
            guard let action = KeyMap.action(for: key, mode: keyMode) else {
                if keyMode != .live, KeyMap.action(for: key, mode: .live) != nil {
                    showNotice("\(key): only while training live (this is " + (keyMode == .replay ? "a replay)" : "a watched log)"),
                               .warning)
                }
                return .none
            }
            return perform(action)
        }
    }

    /// Carries out an action of the key table.
    public func perform(_ action: KeyAction) -> ScreenAction {
        statusIsStale = true
        switch action {
        case .togglePause, .step, .scaleLR, .releaseLR, .resetLR, .checkpoint, .rollback, .changePace:
            if keyMode == .replay {
                replay(action)
            } else if let c = command(for: action), let error = steer(c) {
                showNotice("✗ \(c): \(error)", .error)
            }
        case .seek, .seekEvent, .changeSpeed, .jumpToStart, .jumpToEnd:
            replay(action)
        case .prompt:
            overlay = .prompt(PromptState(hint: promptHint, history: commandHistory))
        case .warmup:
            overlay = .prompt(PromptState(text: "warmup 200", hint: promptHint, history: commandHistory))
        case .fork:
            overlay = .prompt(PromptState(text: forkPromptText, hint: promptHint, history: commandHistory))
        case .sortBranches:
            if branchRows.isEmpty {
                showNotice("no branches to sort: 'b' or ':fork …' makes some" + (isLive ? "" : " (in a live run)"), .warning)
            } else {
                branchTable.cycleSortColumn(columns: Self.branchColumns)
                let c = branchTable.sortColumn.map { Self.branchColumns[$0].title }
                showNotice("branches sorted by " + (c.map { $0 + (branchTable.descending ? ", highest first" : ", lowest first") } ?? "number"))
            }
        case .schedulerMenu:
            // The catalogue is built now, sized to the rest of the run, not with every status.
            let kinds = isLive ? primary.source?.schedulerKinds() ?? [] : []
            if kinds.isEmpty {
                showNotice("no schedulers to choose from" + (isLive ? "" : " in a replay"), .warning)
            } else {
                overlay = .schedulerMenu(SchedulerMenuState(kinds: kinds, current: status.schedulerSpec))
            }
        case .cycleGroup:
            let n = primary.groupNames.count
            if n == 0 {
                showNotice("no param groups yet", .warning)
            } else {
                if let g = selectedGroup { selectedGroup = g + 1 < n ? g + 1 : nil } else { selectedGroup = 0 }
                showNotice("LR keys act on " + selectedGroupLabel)
            }
        case .toggleLRScale:
            lrScale = lrScale.toggled
        case .toggleLossScale:
            lossScale = lossScale.toggled
        case .cycleZoom:
            zoomIndex = (zoomIndex + 1) % Self.zoomLevels.count
            showNotice("zoom: \(zoom)")
            viewChanged()
        case .cycleSmoothing:
            smoothingIndex = (smoothingIndex + 1) % RunModel.smoothingWeights.count
            showNotice("loss smoothing: " + Format.trimZeros(Format.fixed(smoothingWeight, 2)))
            viewChanged()
        case .nextTheme:
            nextTheme()
            viewChanged()
        case .cycleFocus:
            let order: [Panel?] = [.lrChart, .lossChart, .events, nil]
            let i = order.firstIndex(of: focus) ?? order.count - 1
            setFocus(order[(i + 1) % order.count])
        case .findLR:
            if isLive { startFindLR() } else { showPastFindLR() }
        case .help:
            overlay = .help
        case .detach:
            // An attached run's `q` detaches already; `d` is for a run trained here.
            guard primary.source?.canDetach == true else {
                showNotice("d: only a run trained by this lrtop with a control socket can be detached" + (isLive ? " (q leaves an attached run going)" : ""), .warning)
                return .none
            }
            return .detach
        case .quit:
            if trainingStillRunning {
                overlay = .confirmQuit
            } else {
                return .quit
            }
        case .close:
            overlay = .none
        case .redraw:
            return .redraw
        case .metricsView, .filterMetrics, .metricsGrid:
            performMetrics(action)
        }
        return .none
    }

    // MARK: focus, cursor, events, mouse

    func setFocus(_ panel: Panel?) {
        focus = panel
        switch panel {
        case .lrChart, .lossChart:
            if chartCursor == nil { chartCursor = viewStep }
            showNotice("chart cursor: ← → move it, tab next panel, esc leaves")
        case .events:
            chartCursor = nil
            selectedEvent = selectedEvent ?? 0
            showNotice("events: ↑ ↓ select, enter opens, esc leaves")
        case nil:
            chartCursor = nil
            selectedEvent = nil
        }
    }

    /// Keys a focused panel takes before the key table; true when the key was used.
    func handleFocused(_ key: Key) -> Bool {
        guard let focus else { return false }
        if key == .escape { setFocus(nil); notice = nil; return true }
        switch focus {
        case .lrChart, .lossChart:
            let steps = visibleSteps
            let width = max(1, lastPlots[focus]?.width ?? 60)
            let stride = max(1, (steps.upperBound - steps.lowerBound + 1) / width)
            let start = chartCursor ?? viewStep ?? steps.lowerBound
            switch key {
            case .left: chartCursor = max(steps.lowerBound, start - stride)
            case .right: chartCursor = min(steps.upperBound, start + stride)
            case .home: chartCursor = steps.lowerBound
            case .end: chartCursor = viewStep ?? steps.upperBound
            default: return false
            }
            return true
        case .events:
            let count = visibleEvents.count
            guard count > 0 else { return false }
            let page = max(1, (lastLayout?.events.height ?? 8) - 2)
            let sel = selectedEvent ?? 0
            switch key {
            case .up, .char("k"): selectedEvent = max(0, sel - 1)
            case .down, .char("j"): selectedEvent = min(count - 1, sel + 1)
            case .pageUp: selectedEvent = max(0, sel - page)
            case .pageDown: selectedEvent = min(count - 1, sel + page)
            case .home: selectedEvent = 0
            case .end: selectedEvent = count - 1
            case .enter: openEvent(sel)
            default: return false
            }
            eventScroll = EventList.scroll(eventScroll, keeping: selectedEvent, height: page, count: count)
            return true
        }
    }

    /// The events the list shows, in the order they happened (up to the replay cursor).
    var visibleEvents: [EventRecord] {
        guard let c = status.cursor else { return primary.events }
        return primary.events.filter { $0.step <= c }
    }

    func openEvent(_ indexFromLatest: Int) {
        let events = visibleEvents
        guard indexFromLatest >= 0, indexFromLatest < events.count else { return }
        let event = events[events.count - 1 - indexFromLatest]
        // A find-lr event opens its curve.
        if let folder = Self.findLRFolder(of: event) {
            showPastFindLR(folderName: folder)
            if overlay == .findLR { return }
        }
        overlay = .eventDetail(event)
    }

    /// A click focuses the panel under it (on a chart it also puts the cursor there; on an event it opens it);
    /// the wheel zooms a chart's x-range or scrolls the events.
    func handle(mouse m: MouseEvent) -> ScreenAction {
        switch overlay {
        case .help, .eventDetail:
            if m.kind == .click { overlay = .none }
            return .none
        case .findLR:
            if m.kind == .click { clickFindLR(x: m.x, y: m.y) }
            return .none
        case .none: break
        default: return .none
        }
        if metricsView.isOpen { return handleMetricsMouse(m) }
        guard let layout = lastLayout else { return .none }
        let at = Position(x: m.x, y: m.y)
        let panel: Panel? = layout.lrChart.contains(at) ? .lrChart : layout.lossChart.contains(at) ? .lossChart
            : layout.events.contains(at) ? .events : nil
        switch m.kind {
        case .wheelUp, .wheelDown:
            if panel == .events {
                let count = visibleEvents.count
                let h = max(1, layout.events.height - 2)
                eventScroll = max(0, min(max(0, count - h), eventScroll + (m.kind == .wheelUp ? -3 : 3)))
            } else if panel != nil {
                zoom(in: m.kind == .wheelUp)
            }
        case .click:
            guard let panel else { return .none }
            if focus != panel { setFocus(panel) }
            switch panel {
            case .lrChart, .lossChart:
                if let plot = lastPlots[panel], plot.contains(at) {
                    let steps = visibleSteps
                    let cols = StepColumns(first: steps.lowerBound, last: steps.upperBound, count: plot.width)
                    chartCursor = cols.steps(ofColumn: m.x - plot.x)?.lowerBound ?? chartCursor
                }
            case .events:
                let row = m.y - layout.events.y - 1
                let count = visibleEvents.count
                let top = EventList.scroll(eventScroll, keeping: nil, height: max(1, layout.events.height - 2), count: count)
                if row >= 0, top + row < count {
                    selectedEvent = top + row
                    openEvent(top + row)
                }
            }
        }
        return .none
    }

    /// The zoom levels from the widest x-range to the narrowest.
    static let zoomOrder = [1, 0, 2, 3]

    func zoom(in zoomIn: Bool) {
        let k = Self.zoomOrder.firstIndex(of: zoomIndex) ?? 0
        let next = zoomIn ? min(Self.zoomOrder.count - 1, k + 1) : max(0, k - 1)
        guard Self.zoomOrder[next] != zoomIndex else { return }
        zoomIndex = Self.zoomOrder[next]
        showNotice("zoom: \(zoom)")
        viewChanged()
    }

    // MARK: remembered view

    /// The view settings a person chose, to keep between sessions.
    public var viewPreferences: ViewPreferences {
        ViewPreferences(theme: theme.name, zoom: zoomIndex, smoothing: smoothingIndex)
    }

    /// Restores remembered zoom and smoothing (the theme is loaded by the caller, which knows the theme files).
    public func apply(_ p: ViewPreferences) {
        if let z = p.zoom, Self.zoomLevels.indices.contains(z) { zoomIndex = z }
        if let e = p.smoothing, RunModel.smoothingWeights.indices.contains(e) { smoothingIndex = e }
        statusIsStale = true
    }

    func viewChanged() { onViewChange?(viewPreferences) }

    /// The steering command a key action sends, or nil for actions that do not send one.
    public func command(for action: KeyAction) -> Command? {
        let group = selectedGroup.flatMap { g in primary.groupNames.indices.contains(g) ? primary.groupNames[g] : nil }
        switch action {
        case .togglePause: return status.state == .paused ? .resume : .pause
        case .step: return .step(1)
        case .scaleLR(let f): return .lr(group: group, .scale(f))
        case .releaseLR: return .lr(group: group, .release)
        case .resetLR: return .lr(group: group, .reset)
        case .checkpoint: return .checkpoint
        case .rollback: return .rollback
        case .changePace(let f): return .pace(.scale(f))
        default: return nil
        }
    }

    /// The replay command a key action sends in a replay, or nil.
    public func replayCommand(for action: KeyAction) -> ReplayCommand? {
        switch action {
        case .togglePause: return status.state == .running ? .pause : .play
        case .step: return .step(1)
        case .seek(let amount): return .seek(amount)
        case .seekEvent(let d): return .event(next: d > 0)
        case .changeSpeed(let d): return .speed(d < 0 ? .down : .up)
        case .jumpToStart: return .goto(.start)
        case .jumpToEnd: return .goto(.end)
        default: return nil
        }
    }

    /// A key's move in a replay: shown in the status panel and header; only a refusal needs words.
    func replay(_ action: KeyAction) {
        guard let c = replayCommand(for: action) else { return }
        if let error = primary.source?.control(c) { showNotice("✗ \(error)", .warning) }
    }

    /// "all groups" or the selected group's name.
    public var selectedGroupLabel: String {
        guard let g = selectedGroup, primary.groupNames.indices.contains(g) else { return "all groups" }
        return "group " + primary.groupNames[g]
    }

    /// What the prompt does with a line: parses it once, in the replay language in a replay, in the steering
    /// language otherwise, and sends the value. Returns why it was not sent (shown in the prompt), or nil.
    func submit(_ text: String) -> String? {
        guard let source = primary.source else { return "nothing to send commands to" }
        if keyMode == .replay {
            switch ReplayCommandParser.parse(text) {
            case .failure(let e): return e.description
            case .success(let c):
                if let error = source.control(c) { return error }
                overlay = .none
                showNotice("› " + text)
                return nil
            }
        }
        let command: Command
        do { command = try CommandParser.parse(text) } catch {
            // Refused here, at once; a run that logs every command it is sent logs this one too.
            if isLive && endedRunText == nil { source.noteRefused(text, because: error) }
            return error.description
        }
        // A find-lr typed at the prompt opens its panel, as `f` does.
        if isLive, case .findLR(let settings) = command {
            overlay = .none
            startFindLR(settings, text: text)
            return nil
        }
        if let error = steer(command, text: text) { return error }
        overlay = .none
        return nil
    }

    /// Sends a steering command to the run and shows it as sent until its answer comes back (`sent`). Returns
    /// why it could not be sent, or nil. `awaited: false` sends one whose answer needs no words (the pause and
    /// resume around a find-lr sweep).
    @discardableResult
    func steer(_ command: Command, text: String? = nil, awaited: Bool = true) -> String? {
        guard let source = primary.source else { return "nothing to send commands to" }
        if isLive, let ended = endedRunText { return ended }
        let text = text ?? command.description
        let id: Int
        do { id = try source.send(command, text: text) } catch { return error.description }
        lastSentID = id
        if awaited { sent(text, id: id) }
        return nil
    }

    /// Why a live run takes no more commands (its end record has arrived), and what still works; nil while it can
    /// be steered. Without an end record the source answers (an attached run that vanished says so itself).
    var endedRunText: String? {
        guard let end = primary.end else { return nil }
        let word: String
        switch RunPhase(ended: end.reason) {
        case .finished: word = "finished"
        case .diverged: word = "diverged and stopped"
        case .failed: word = "failed"
        default: word = "stopped"
        }
        return "the run has \(word): nothing left to steer (l L z e t and ? still work; q quits)"
    }

    /// A command the source queued: shown as sent until the run answers it.
    func sent(_ text: String, id: Int) {
        showNotice("› " + text + " …")
        awaitingAnswer.append((id, text))
        if awaitingAnswer.count > 32 { awaitingAnswer.removeFirst(awaitingAnswer.count - 32) }
    }

    /// What the prompt shows as the current value.
    var promptHint: String {
        if keyMode == .replay { return "STEP · goto STEP|start|end · seek ±N[%] · speed xN · event next|prev · play · pause" }
        var parts: [String] = []
        let groups = status.groups
        if let g = selectedGroup, groups.indices.contains(g) {
            parts.append("lr \(groups[g].name) " + Format.lr(groups[g].lr) + (groups[g].held ? " held" : ""))
        } else if let g = groups.first {
            parts.append("lr " + Format.lr(g.lr) + (groups.count > 1 ? " (+\(groups.count - 1) groups)" : "")
                         + (g.held ? " held" : ""))
        } else if let lrs = primary.lastStepRecord?.lrs, let first = lrs.first {
            parts.append("lr " + Format.lr(first))
        }
        if !status.scheduler.isEmpty { parts.append(status.scheduler) }
        return parts.joined(separator: " · ")
    }

    func nextTheme() {
        let store = themeStore ?? ThemeStore(searchPaths: [])
        let name = store.next(after: theme.name)
        let result = store.load(name)
        setTheme(result.theme)
        if let first = result.diagnostics.first {
            showNotice(first + (result.diagnostics.count > 1 ? " (+\(result.diagnostics.count - 1) more)" : ""), .warning)
        } else {
            showNotice("theme: " + result.theme.name)
        }
    }

    /// Renders a frame of the given size.
    public func render(width: Int, height: Int) -> Buffer {
        var buffer = Buffer(width: width, height: height)
        render(into: &buffer)
        return buffer
    }
}
