import Foundation
import LRLog
import LRCommand

// The find-lr panel's part of the dashboard: starting a sweep (`f`, the prompt, `lrtop find-lr`), following its
// sub-run, showing a past one (replay, an event), the panel's keys and applying the pick. The panel's state and
// drawing are in Widgets/FindLRPanel.swift.
extension Dashboard {
    /// Where the primary run's sub-runs are (`RUN_DIR/subruns`), nil when the source does not know.
    var subRunsFolder: URL? { primary.source?.runFolder?.appendingPathComponent("subruns") }

    /// `f` live: pauses a running run, starts the range test and opens its panel; the pick then applies and the
    /// run resumes (it was paused only for the sweep). `lrtop find-lr` starts here with `resumeAfterPick`.
    public func startFindLR(_ settings: LRRangeSettings = LRRangeSettings(), text: String? = nil,
                            resumeAfterPick: Bool = false) {
        let command = Command.findLR(settings)
        let wasRunning = status.state == .running && !resumeAfterPick
        if wasRunning, let error = steer(.pause, awaited: false) {
            showNotice("✗ pause: \(error)", .error)
            return
        }
        if let error = steer(command, text: text) {
            showNotice("✗ \(text ?? command.description): \(error)", .error)
            if wasRunning { steer(.resume, awaited: false) }
            return
        }
        findLR = FindLRSession(commandID: lastSentID, known: Set(FindLRSession.folders(in: subRunsFolder)),
                               canApply: true, resumeOnApply: wasRunning || resumeAfterPick, resumeOnClose: wasRunning)
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
        let session = FindLRSession(commandID: nil, known: [], canApply: isLive, resumeOnApply: false, resumeOnClose: false)
        session.follow(subruns.appendingPathComponent(name))
        _ = session.poll()
        if session.curve == nil { session.error = "subruns/\(name)/log.jsonl is not a find-lr sub-run log" }
        findLR = session
        overlay = .findLR
    }

    /// The sub-run folder a find-lr event made (`find-lr-40`, from its `result`).
    static func findLRFolder(of event: EventRecord) -> String? {
        guard event.kind == .command, case .findLR? = event.command, let path = event.result?.subruns?.first,
              path.hasPrefix("subruns/") else { return nil }
        return String(path.dropFirst("subruns/".count))
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
        return changed
    }

    /// The run's answer to the sweep: why it failed, or the sub-run it made (followed if not found yet).
    func findLRAnswered(_ reply: CommandReply) {
        guard let session = findLR else { return }
        switch reply.outcome {
        case .rejected(let why): session.error = why
        case .applied:
            if session.folder == nil, let event = reply.event, let name = Self.findLRFolder(of: event),
               let subruns = subRunsFolder {
                session.follow(subruns.appendingPathComponent(name))
                _ = session.poll()
            }
        }
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
        guard session.finished, let pick = session.pickText, let lr = Double(pick) else {
            showNotice(session.error == nil ? "the sweep is still running: wait for its curve" : "nothing to apply", .warning)
            return
        }
        // The LR as the panel shows it (three digits), so the command is what the person saw.
        let command: Command = asSchedule ? .sched("onecycle:max_lr=" + pick) : .lr(group: nil, .set(lr))
        let text = asSchedule ? command.description : "lr " + pick
        if let error = steer(command, text: text) {
            showNotice("✗ \(text): \(error)", .error)
            return
        }
        commandHistory.append(text)
        if session.resumeOnApply { steer(.resume, awaited: false) }
        findLR = nil
        overlay = .none
    }

    func closeFindLR() {
        if let session = findLR, session.resumeOnClose { steer(.resume, awaited: false) }
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
}

extension Dashboard {
    func renderFindLR(into buffer: inout Buffer, area: Rect) {
        guard let session = findLR else { return }
        FindLRPanelView(session: session, palette: palette).render(into: &buffer, area: area)
    }
}
