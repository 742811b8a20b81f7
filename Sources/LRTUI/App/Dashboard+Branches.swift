import Foundation
import LRCommand
import LRLog

/// One "what if" branch of a `fork` as the branches table shows it: live from its sub-run log, or replayed.
public struct BranchRow: Equatable, Sendable {
    /// K of `adopt K`.
    public var number: Int
    public var label: String
    public var fromStep: Int
    /// The branch's last step so far, and the step it trains to (when the fork's event says).
    public var step: Int?
    public var endStep: Int?
    /// The training loss at the dashboard's smoothing, the last evaluation, the average rate.
    public var loss: Double?
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var stepsPerSec: Double?
    /// queued, training, done, diverged, stopped, adopted, dropped.
    public var state: String
    /// Index into `Dashboard.runs`: its colour in the charts.
    public var runIndex: Int
}

extension Dashboard {
    /// A live run (or a watched log) that forks: the branches' sub-run logs are found beside the run's log when
    /// the `fork` event arrives (their headers are written before it) and followed as overlays from then on.
    func followNewBranches() -> Bool {
        guard keyMode != .replay else { return false }
        let total = primary.eventsReceived
        guard total > eventsSeenForBranches else { return false }
        let fresh = primary.events.suffix(min(total - eventsSeenForBranches, primary.events.count))
        eventsSeenForBranches = total
        guard fresh.contains(where: Self.isFork), let log = status.logPath else { return false }
        var added = false
        for branch in BranchSubruns.find(besideLog: URL(fileURLWithPath: log))
        where !followedBranchLogs.contains(branch.log.path) {
            followedBranchLogs.insert(branch.log.path)
            addOverlay(RunModel(source: WatchSource(url: branch.log, title: branch.displayName)))
            added = true
        }
        return added
    }

    /// A `fork` that started branches.
    static func isFork(_ e: EventRecord) -> Bool {
        guard e.kind == .command, case .fork? = e.command else { return false }
        return true
    }

    /// The branches of the latest fork, in branch order, with their state after `adopt K` / `drop`.
    public var branchRows: [BranchRow] {
        var rows: [BranchRow] = []
        for (i, run) in runs.enumerated().dropFirst() {
            guard let sub = run.header?.subrun, sub.kind == .branch, let from = sub.fromStep,
                  let number = BranchSubruns.number(displayName: run.name) else { continue }
            if let cursor = status.cursor, from > cursor { continue }
            var state = "queued"
            if let end = run.end {
                state = end.reason == .completed ? "done" : end.reason.rawValue
            } else if run.lastStep != nil {
                state = "training"
            }
            // The table's loss is smoothed (its frame says how much): the loss chart's weight, or 0.6 while it is raw.
            let smoothed = run.smoothed[max(1, smoothingIndex)].lastValue ?? run.loss.lastValue
            rows.append(BranchRow(number: number, label: sub.label, fromStep: from, step: run.lastStep, endStep: nil,
                                  loss: smoothed, valLoss: run.lastEval?.loss, valAccuracy: run.lastEval?.accuracy,
                                  stepsPerSec: run.stepsPerSecAverage, state: state, runIndex: i))
        }
        guard let latest = rows.map(\.fromStep).max() else { return [] }
        rows = rows.filter { $0.fromStep == latest }
        // The main run's events say how long the branches train and how the fork ended.
        var steps: Int? = nil
        var resolution: (adopted: Int?, dropped: Bool)? = nil
        for e in primary.events where e.kind == .command {
            switch e.command {
            case .fork(let fork)? where e.step == latest:
                steps = fork.steps
                resolution = nil
            case .adopt(let k)? where e.step >= latest: resolution = (k, false)
            case .drop? where e.step == latest: resolution = (nil, true)
            default: break
            }
        }
        for i in rows.indices {
            if let steps { rows[i].endStep = latest + steps }
            if let r = resolution {
                if r.dropped { rows[i].state = "dropped" } else if r.adopted == rows[i].number { rows[i].state = "adopted" }
            }
        }
        return rows.sorted { $0.number < $1.number }
    }

    /// What the `b` key puts in the prompt: a fork around the current LR (×3, ×1, ÷3) for a tenth of the run, or,
    /// while a fork waits, `adopt K` for the finished branch with the lowest validation (else training) loss
    /// (`drop` while none has finished).
    var forkPromptText: String {
        let rows = branchRows
        // The latest fork is not adopted or dropped yet and the run is still going: it waits for the choice.
        if !rows.isEmpty, !rows.contains(where: { ["adopted", "dropped"].contains($0.state) }), isLive,
           status.state.isActive, primary.end == nil {
            let done = rows.filter { $0.state == "done" }
            guard let best = done.min(by: { ($0.valLoss ?? $0.loss ?? .infinity) < ($1.valLoss ?? $1.loss ?? .infinity) })
            else { return "drop" }
            return "adopt \(best.number)"
        }
        let total = primary.totalSteps ?? 1000
        let left = max(1, total - (primary.lastStep ?? 0))
        let steps = min(left, max(10, min(500, total / 10)))
        guard let lr = status.groups.first?.lr ?? primary.lastStepRecord?.lrs.first, lr > 0, lr.isFinite else {
            return "fork 'lr *2' | 'lr /2' steps=\(steps)"
        }
        return "fork lr=\(Self.shortLR(lr * 3)),\(Self.shortLR(lr)),\(Self.shortLR(lr / 3)) steps=\(steps)"
    }

    /// "3e-4", "0.003", "1.5e-5": what a person types (and the parser reads back exactly as shown).
    static func shortLR(_ v: Double) -> String {
        let text = Format.lr(v)
        guard let e = text.firstIndex(of: "e") else { return Format.trimZeros(text) }
        return Format.trimZeros(String(text[..<e])) + text[e...]
    }

    // MARK: drawing

    /// The state right after the branch (adopted, diverged): a narrow table leaves columns off on the right.
    static let branchColumns: [TrialColumn] = [
        .configuration("#"), .configuration("branch", maxWidth: 32), .state(),
        .result("loss", better: .lower), .result("val loss", better: .lower), .result("val acc", better: .higher),
        .result("steps/s", better: .higher), .result("step"),
    ]

    static func branchTableRow(_ row: BranchRow) -> TrialRow {
        func number(_ v: Double?, _ style: TrialNumberStyle) -> TrialValue { v.map { .number($0, style) } ?? .missing }
        let tone: TrialTone
        switch row.state {
        case "queued": tone = .waiting
        case "training": tone = .active
        case "done", "adopted": tone = .good
        case "diverged": tone = .bad
        default: tone = .stopped
        }
        let progress: TrialValue = row.step.map { s in
            .text(row.endStep.map { row.state == "training" ? "\(s)/\($0)" : "\(s)" } ?? "\(s)")
        } ?? .missing
        return TrialRow(id: "\(row.fromStep)/\(row.number)", cells: [
            .text("\(row.number)"), .text(row.label), .state(row.state == "adopted" ? "adopted ✓" : row.state, tone),
            number(row.loss, .metric), number(row.valLoss, .metric), number(row.valAccuracy, .percent),
            number(row.stepsPerSec, .compact), progress,
        ])
    }

    /// The branches table (the shared comparison view), under the loss chart while a fork's branches are shown.
    func renderBranches(into buffer: inout Buffer, area: Rect, rows: [BranchRow]) {
        guard let first = rows.first else { return }
        let done = rows.filter { $0.state != "queued" && $0.state != "training" }.count
        // Which loss the table shows, in its frame: smoothed (the adopt message gives the last batch's, raw).
        let weight = RunModel.smoothingWeights[max(1, smoothingIndex)]
        let block = Block(title: "branches from step \(first.fromStep)",
                          rightTitle: "loss smooth \(Format.trimZeros(Format.fixed(weight, 2))) · \(done)/\(rows.count) done · B sorts",
                          titleStyle: palette.title, rightTitleStyle: palette.inactive, borderStyle: palette.border)
        block.render(into: &buffer, area: area)
        TrialTable(columns: Self.branchColumns, rows: rows.map(Self.branchTableRow), state: branchTable, palette: palette)
            .render(into: &buffer, area: block.inner(area))
    }
}
