import Foundation
import LRLog

/// The find-lr panel: the range test's sub-run it follows (read from `RUN_DIR/subruns/find-lr-*/log.jsonl`, live
/// as the trainer writes it, or whole in a replay), the curve and suggestions computed from its records, the
/// cursor, and what enter does.
public final class FindLRSession {
    /// The sub-run's folder once known.
    public internal(set) var folder: URL?
    /// Sub-run folders that existed before this sweep was asked for (a live sweep's is the new one).
    let known: Set<String>
    var follower: RunLogFollower?
    var records: [RunRecord] = []
    public internal(set) var curve: LRRangeCurve?
    /// The sub-run's end record arrived: the sweep is over and the run's state restored.
    public internal(set) var finished = false
    /// The LR under the cursor.
    public internal(set) var cursorLR: Double?
    /// The command that started it, to match its answer in the run's events (nil: a past sweep being looked at).
    let command: String?
    /// Enter (and `o`) applies the pick; false in a replay.
    public let canApply: Bool
    /// Send `resume` after applying the pick / after closing without one (the run was paused for the sweep).
    let resumeOnApply: Bool
    let resumeOnClose: Bool
    /// Why the sweep failed (its error event), shown in the panel.
    public internal(set) var error: String?
    /// Where the chart was last drawn, for clicks.
    var chartArea: Rect?

    init(command: String?, known: Set<String>, canApply: Bool, resumeOnApply: Bool, resumeOnClose: Bool) {
        self.command = command; self.known = known; self.canApply = canApply
        self.resumeOnApply = resumeOnApply; self.resumeOnClose = resumeOnClose
    }

    /// The find-lr sub-run folders under `subruns`, by name.
    static func folders(in subruns: URL?) -> [String] {
        guard let subruns, let names = try? FileManager.default.contentsOfDirectory(atPath: subruns.path) else { return [] }
        return names.filter { $0.hasPrefix("find-lr-") }.sorted()
    }

    func follow(_ folder: URL) {
        self.folder = folder
        follower = RunLogFollower(url: folder.appendingPathComponent("log.jsonl"))
    }

    /// Reads what the sub-run's log holds now; returns whether anything changed.
    func poll() -> Bool {
        guard let follower, !finished else { return false }
        let new = (try? follower.poll()) ?? []
        guard !new.isEmpty else { return false }
        records += new
        curve = LRRangeCurve(records: records)
        if records.contains(where: { if case .end = $0 { true } else { false } }) {
            finished = true
            // On valley, fastai's default; on a curve too short for it, at the lowest loss (never at the sweep's
            // largest LR, which enter would apply).
            if cursorLR == nil, let curve {
                let lowest = curve.losses.indices.filter { curve.losses[$0].isFinite }.min { curve.losses[$0] < curve.losses[$1] }
                cursorLR = curve.suggestions.valley ?? lowest.map { curve.lrs[$0] } ?? curve.lrs.first
            }
        }
        return true
    }

    /// The cursor's LR as the command takes it.
    var pickText: String? { cursorLR.map(LRRangeCurve.format) }

    /// Which suggestion the cursor is on, if any.
    var cursorSuggestion: String? {
        guard let c = cursorLR, let curve else { return nil }
        return curve.suggestions.named.first { $0.lr == c }?.name
    }

    /// Moves the cursor by `points` points along the curve (by the point nearest it first).
    func move(by points: Int) {
        guard let curve, curve.count > 0 else { return }
        let i = cursorLR.flatMap { curve.index(nearest: $0) } ?? 0
        cursorLR = curve.lrs[max(0, min(curve.count - 1, i + points))]
    }

    func moveToEnd(_ last: Bool) {
        guard let curve, let lr = last ? curve.lrs.last : curve.lrs.first else { return }
        cursorLR = lr
    }

    /// Puts the cursor on the next suggestion (tab), in the legend's order.
    func nextSuggestion() {
        guard let named = curve?.suggestions.named, !named.isEmpty else { return }
        let i = named.firstIndex { $0.lr == cursorLR }.map { ($0 + 1) % named.count } ?? 0
        cursorLR = named[i].lr
    }
}

extension Dashboard {
    /// Where the primary run's sub-runs are (`RUN_DIR/subruns`), nil when the source does not know.
    var subRunsFolder: URL? { primary.source?.runFolder?.appendingPathComponent("subruns") }

    /// `f` live: pauses a running run, starts the range test and opens its panel; the pick then applies and the
    /// run resumes (it was paused only for the sweep). `lrtop find-lr` starts here with `resumeAfterPick`.
    public func startFindLR(_ settings: LRRangeSettings = LRRangeSettings(), text: String? = nil,
                            resumeAfterPick: Bool = false) {
        let command = text ?? settings.commandText
        let wasRunning = status.state == .running && !resumeAfterPick
        if wasRunning, let error = send("pause") {
            showNotice("✗ pause: \(error)", .error)
            return
        }
        if let error = send(command) {
            showNotice("✗ \(command): \(error)", .error)
            if wasRunning { _ = send("resume") }
            return
        }
        sent(command)
        findLR = FindLRSession(command: command, known: Set(FindLRSession.folders(in: subRunsFolder)), canApply: true,
                               resumeOnApply: wasRunning || resumeAfterPick, resumeOnClose: wasRunning)
        findLREventsSeen = primary.eventsReceived
        overlay = .findLR
    }

    /// `f` in a replay, or enter on a find-lr event: the run's last range test up to the view step (or the one the
    /// event names), read whole from its sub-run log.
    func showPastFindLR(folderName: String? = nil) {
        let names = FindLRSession.folders(in: subRunsFolder)
        var chosen = folderName.flatMap { names.contains($0) ? $0 : nil }
        if chosen == nil && folderName == nil {
            let limit = viewStep ?? Int.max
            let steps = names.map { name -> (String, Int) in
                let url = subRunsFolder!.appendingPathComponent(name).appendingPathComponent("log.jsonl")
                guard case .header(let h)? = (try? RunLogReader.readRecords(at: url))?.records.first else { return (name, Int.max) }
                return (name, h.subrun?.fromStep ?? Int.max)
            }
            chosen = (steps.filter { $0.1 <= limit }.max { $0.1 < $1.1 } ?? steps.min { $0.1 < $1.1 })?.0
        }
        guard let name = chosen, let subruns = subRunsFolder else {
            showNotice(folderName.map { "its sub-run subruns/\($0) is not on disk" }
                       ?? "no find-lr in this run (its sweeps are kept in RUN_DIR/subruns/find-lr-*)", .warning)
            return
        }
        let session = FindLRSession(command: nil, known: [], canApply: isLive, resumeOnApply: false, resumeOnClose: false)
        session.follow(subruns.appendingPathComponent(name))
        _ = session.poll()
        if session.curve == nil { session.error = "subruns/\(name)/log.jsonl is not a find-lr sub-run log" }
        findLR = session
        overlay = .findLR
    }

    /// The sub-run folder a find-lr event's message names ("subruns/find-lr-40: 87 steps ...").
    static func findLRFolder(of event: EventRecord) -> String? {
        guard event.kind == .command, event.text.lowercased().hasPrefix("find"),
              let m = event.message, m.hasPrefix("subruns/"), let colon = m.firstIndex(of: ":") else { return nil }
        return String(m[m.index(m.startIndex, offsetBy: "subruns/".count)..<colon])
    }

    /// Follows the live sweep: finds its new sub-run folder, reads its records, notices its failure.
    func updateFindLR() -> Bool {
        guard let session = findLR, overlay == .findLR else { return false }
        var changed = false
        if session.folder == nil, let subruns = subRunsFolder,
           let name = FindLRSession.folders(in: subruns).first(where: { !session.known.contains($0) }) {
            session.follow(subruns.appendingPathComponent(name))
            changed = true
        }
        if session.poll() { changed = true }
        if let command = session.command, primary.eventsReceived > findLREventsSeen {
            let fresh = primary.events.suffix(min(primary.eventsReceived - findLREventsSeen, primary.events.count))
            findLREventsSeen = primary.eventsReceived
            for e in fresh where e.text == command {
                if e.kind == .error { session.error = e.message ?? "the sweep failed"; changed = true }
                if e.kind == .command, session.folder == nil, let name = Self.findLRFolder(of: e), let subruns = subRunsFolder {
                    session.follow(subruns.appendingPathComponent(name))
                    _ = session.poll()
                    changed = true
                }
            }
        }
        return changed
    }

    /// Keys of the find-lr panel.
    func handleFindLR(_ key: Key) {
        guard let session = findLR else { overlay = .none; return }
        switch key {
        case .left: session.move(by: -1)
        case .right: session.move(by: 1)
        case .pageUp: session.move(by: -10)
        case .pageDown: session.move(by: 10)
        case .home: session.moveToEnd(false)
        case .end: session.moveToEnd(true)
        case .tab: session.nextSuggestion()
        case .enter: applyFindLRPick(asSchedule: false)
        case .char("o"): applyFindLRPick(asSchedule: true)
        case .escape, .char("q"), .char("f"):
            closeFindLR()
        default: break
        }
    }

    /// Enter: `lr X`; `o`: `sched onecycle:max_lr=X`. Then the run resumes if it was paused for the sweep.
    func applyFindLRPick(asSchedule: Bool) {
        guard let session = findLR else { return }
        guard session.canApply else { showNotice("a replay shows the curve; picks apply to a live run", .warning); return }
        guard session.finished, let pick = session.pickText else {
            showNotice(session.error == nil ? "the sweep is still running: wait for its curve" : "nothing to apply", .warning)
            return
        }
        let command = asSchedule ? "sched onecycle:max_lr=" + pick : "lr " + pick
        if let error = send(command) {
            showNotice("✗ \(command): \(error)", .error)
            return
        }
        commandHistory.append(command)
        if session.resumeOnApply { _ = send("resume") }
        findLR = nil
        overlay = .none
        sent(command)
    }

    func closeFindLR() {
        if let session = findLR, session.resumeOnClose { _ = send("resume") }
        findLR = nil
        overlay = .none
    }

    /// A click on the chart puts the cursor at the nearest point.
    func clickFindLR(x: Int, y: Int) {
        guard let session = findLR, let area = session.chartArea, area.contains(Position(x: x, y: y)),
              let curve = session.curve, let lr = FindLRChart(curve: curve, cursorLR: nil, palette: palette).lr(atColumn: x, in: area),
              let i = curve.index(nearest: lr) else { return }
        session.cursorLR = curve.lrs[i]
    }

    // MARK: drawing

    func renderFindLR(into buffer: inout Buffer, area: Rect) {
        guard let session = findLR else { return }
        // Above the key bar, where a command's answer may take up to two rows.
        let room = area.inset(top: 1, bottom: 2)
        let box = room.centered(width: min(room.width, 110), height: min(room.height, 30))
        Clear(style: palette.background).render(into: &buffer, area: box)
        var title = "find-lr"
        if let folder = session.folder { title += " · subruns/" + folder.lastPathComponent }
        let state: String
        if let e = session.error { state = "failed" ; _ = e }
        else if let c = session.curve { state = session.finished ? c.summary.components(separatedBy: ";").first ?? "" : "sweeping … \(c.count) steps" }
        else { state = "starting the sweep …" }
        let block = Block(title: title, rightTitle: state, titleStyle: palette.title, rightTitleStyle: palette.inactive,
                          borderStyle: palette.highlight)
        block.render(into: &buffer, area: box)
        let inner = block.inner(box)
        guard inner.height >= 6 else { return }
        // Row 0: the cursor's LR and loss; then the chart; then the legend (one or two rows: every suggestion is
        // named); the last row, the keys.
        let named = session.curve?.suggestions.named ?? []
        let entries = named.map { s in (letter: String(FindLRChart.letters[s.name] ?? "•"), text: " \(s.name) \(LRRangeCurve.format(s.lr))   ", lr: s.lr) }
        var legend: [[(letter: String, text: String, lr: Double)]] = [[]]
        var used = 0
        for e in entries {
            let w = e.letter.cellWidth + e.text.cellWidth
            if used + w > inner.width - 1, !legend[legend.count - 1].isEmpty { legend.append([]); used = 0 }
            legend[legend.count - 1].append(e)
            used += w
        }
        let legendRows = max(1, min(2, legend.count))
        let chartArea = Rect(x: inner.x, y: inner.y + 1, width: inner.width, height: inner.height - 2 - legendRows)
        session.chartArea = chartArea
        if let error = session.error {
            for (i, line) in Format.wrap("✗ " + error, width: inner.width - 2).prefix(3).enumerated() {
                buffer.set(string: line, at: Position(x: inner.x + 1, y: inner.y + 2 + i), style: palette.error, clip: inner)
            }
        } else if let curve = session.curve {
            FindLRChart(curve: curve, cursorLR: session.cursorLR, palette: palette).render(into: &buffer, area: chartArea)
            if let c = session.cursorLR {
                var text = "cursor lr " + LRRangeCurve.format(c)
                if let l = curve.loss(at: c) { text += " · loss " + Format.metric(l) }
                if let s = session.cursorSuggestion { text += " · " + s }
                buffer.set(string: text, at: Position(x: inner.x + 1, y: inner.y), style: palette.highlight.bold, clip: inner)
            } else {
                buffer.set(string: "lr \(LRRangeCurve.format(curve.lrs.last ?? 0)) · the sweep runs; the run's state is restored after it",
                           at: Position(x: inner.x + 1, y: inner.y), style: palette.inactive, clip: inner)
            }
            if named.isEmpty && session.finished {
                buffer.set(string: "too few points for a suggestion: sweep more steps (find-lr steps=N)",
                           at: Position(x: inner.x + 1, y: chartArea.bottom), style: palette.warn, clip: inner)
            }
            for (row, items) in legend.prefix(legendRows).enumerated() {
                var x = inner.x + 1
                let y = chartArea.bottom + row
                for e in items {
                    x = buffer.set(string: e.letter, at: Position(x: x, y: y), style: palette.marker.bold.reversed, clip: inner)
                    x = buffer.set(string: e.text, at: Position(x: x, y: y),
                                   style: e.lr == session.cursorLR ? palette.highlight.bold : palette.text, clip: inner)
                }
            }
        } else {
            buffer.set(string: "waiting for the sweep's sub-run log …", at: Position(x: inner.x + 1, y: inner.y + 2),
                       style: palette.inactive, clip: inner)
        }
        let pick = session.pickText ?? "X"
        let keys: String
        if session.canApply {
            keys = "←→ move · tab next suggestion · enter: lr \(pick) · o: sched onecycle:max_lr=\(pick) · esc close"
                + (session.resumeOnClose ? " (the run resumes)" : "")
        } else {
            keys = "←→ move · tab next suggestion · esc close (a replay: the picks are the live run's)"
        }
        buffer.set(string: keys.truncated(toWidth: inner.width - 1), at: Position(x: inner.x + 1, y: inner.bottom - 1),
                   style: palette.inactive, clip: inner)
    }
}
