import Foundation
import LRLog

/// The find-lr panel's state: the range test's sub-run it follows (read from `RUN_DIR/subruns/find-lr-*/log.jsonl`, live
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
    /// The id of the command that started it, whose answer says where its sub-run is or why it failed (nil: a past
    /// sweep being looked at).
    let commandID: Int?
    /// Enter (and `o`) applies the pick; false in a replay.
    public let canApply: Bool
    /// Send `resume` after applying the pick / after closing without one (the run was paused for the sweep).
    let resumeOnApply: Bool
    let resumeOnClose: Bool
    /// Why the sweep failed (its error event), shown in the panel.
    public internal(set) var error: String?
    /// Where the chart was last drawn, for clicks.
    public internal(set) var chartArea: Rect?

    init(commandID: Int?, known: Set<String>, canApply: Bool, resumeOnApply: Bool, resumeOnClose: Bool) {
        self.commandID = commandID; self.known = known; self.canApply = canApply
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

/// The find-lr panel: a box over the dashboard with the chart, the cursor's LR and loss, the legend of
/// suggestions and what the keys do; the sweep's state (or why it failed) in the title.
public struct FindLRPanelView: Widget {
    public let session: FindLRSession
    public var palette: Palette

    public init(session: FindLRSession, palette: Palette) { self.session = session; self.palette = palette }

    public func render(into buffer: inout Buffer, area: Rect) {
        // Above the key bar, where a command's answer may take up to two rows.
        let room = area.inset(top: 1, bottom: 2)
        let box = room.centered(width: min(room.width, 110), height: min(room.height, 30))
        Clear(style: palette.background).render(into: &buffer, area: box)
        var title = "find-lr"
        if let folder = session.folder { title += " · subruns/" + folder.lastPathComponent }
        let state: String
        if session.error != nil {
            state = "failed"
        } else if let c = session.curve {
            // The summary's first part: "87 steps, stopped: loss > 4x min" (the suggestions are in the legend).
            state = session.finished ? c.summary.components(separatedBy: ";").first ?? "" : "sweeping … \(c.count) steps"
        } else {
            state = "starting the sweep …"
        }
        let block = Block(title: title, rightTitle: state, titleStyle: palette.title, rightTitleStyle: palette.inactive,
                          borderStyle: palette.highlight)
        block.render(into: &buffer, area: box)
        let inner = block.inner(box)
        guard inner.height >= 6 else { return }
        // Row 0: the cursor's LR and loss; then the chart; then the legend (one or two rows: every suggestion is
        // named); the last row, the keys.
        let named = session.curve?.suggestions.named ?? []
        let entries = named.map { s in
            (letter: String(FindLRChart.letters[s.name] ?? "•"), text: " \(s.name) \(LRRangeCurve.format(s.lr))   ", lr: s.lr)
        }
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
