import Foundation
import LRLog
import LRTrain
import LRTUI

/// Headless progress lines (one per finished trial and rung) and the final table, for `lrtop sweep`.
final class SweepReporter: @unchecked Sendable {
    let runner: SweepRunner
    let metric: SweepMetric
    private let lock = NSLock()
    private var finishedTrialRungs = 0
    private var stdoutClosed = false

    init(runner: SweepRunner, metric: SweepMetric) { self.runner = runner; self.metric = metric }

    func line(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        guard !stdoutClosed else { return }
        fflush(nil)
        if !writeLine(text, to: STDOUT_FILENO) { stdoutClosed = true }
    }

    /// Trial-rungs the whole sweep trains, when no trial fails.
    var plannedTrialRungs: Int {
        let s = runner.snapshot
        var alive = s.configurations.count, total = 0
        for _ in s.budgets { total += alive * s.seeds.count; alive = runner.plan.survivors(of: alive) }
        return total
    }

    func handle(_ event: SweepEvent) {
        let s = runner.snapshot
        let rungs = s.budgets.count
        switch event {
        case .trialFinished(let t, let k):
            let trial = s.trials[t]
            let cfg = s.configurations[trial.configuration]
            lock.lock(); finishedTrialRungs += 1; let done = finishedTrialRungs; lock.unlock()
            var text = "[\(done)/\(plannedTrialRungs)] rung \(k + 1)/\(rungs) \(trial.name) \(cfg.label): "
            if trial.rungsDone == k + 1, let e = trial.eval(at: s.budgets[k]) {
                text += "step \(s.budgets[k])  val_loss \(Format.fixed(e.loss, 4))  val_acc \(Format.percent(e.accuracy, digits: 2))"
            } else {
                text += "\(trial.state.rawValue)" + (trial.message.map { ": \($0)" } ?? "")
            }
            line(text + "  (\(Format.duration(trial.seconds)))")
        case .rungFinished(let k, let promoted, let stopped):
            let best = SweepTable.ranking(s).first
            var text = "rung \(k + 1)/\(rungs) done at step \(s.budgets[k])"
            if k + 1 < rungs {
                text += ": \(promoted.count) of \(promoted.count + stopped.count) configurations go on to step \(s.budgets[k + 1])"
                    + (promoted.isEmpty ? "" : " (\(promoted.map { s.configurations[$0].name }.joined(separator: ", ")))")
            }
            if let b = best, let score = s.score(of: b, rung: k) {
                text += "; best \(s.configurations[b].name) mean \(metric.rawValue) \(Format.fixed(metric == .valLoss ? score : -score * 100, metric == .valLoss ? 4 : 2))\(metric == .valLoss ? "" : "%")"
            }
            line(text)
        }
    }

    func final(_ s: SweepSnapshot, prepared p: Sweep.Prepared, trainLine: String?) {
        line("")
        line(s.stoppedBy != nil ? "lrtop: sweep stopped after \(Format.duration(s.elapsed)): out of disk space; the table holds the trials that finished a rung"
             : s.interrupted ? "lrtop: sweep interrupted after \(Format.duration(s.elapsed)): the table holds the trials that finished a rung"
             : "lrtop: sweep done in \(Format.duration(s.elapsed)) (\(s.elapsed.formatted(.number.precision(.fractionLength(1)))) s)")
        for l in SweepTable.text(s) { line(l) }
        line("")
        for t in s.trials where t.state == .failed { line("lrtop: \(t.name) failed: \(t.message ?? "")") }
        if let b = s.best {
            let cfg = s.configurations[b]
            let e = s.estimate(of: b) { $0.loss }, a = s.estimate(of: b) { $0.accuracy }
            var text = "lrtop: best\(s.interrupted ? " so far" : "") \(cfg.name): \(cfg.label)"
            if let e, let a {
                let n = s.seeds.count
                text += " — val_loss \(SweepTable.value(e.mean, e.spread, .metric, seeds: n).text), val_acc "
                    + SweepTable.value(a.mean, a.spread, .percent, seeds: n).text
                    + " at step \(s.budgets[e.rung])" + (s.seeds.count > 1 ? " (mean ± std over \(s.seeds.count) seeds)" : "")
            }
            line(text)
            if let trainLine { line("lrtop: reproduce it with: \(trainLine)") }
        } else {
            line("lrtop: no configuration finished a rung" + (s.interrupted ? "" : ": see the failures above"))
        }
        line("lrtop: results in \(p.directory.appendingPathComponent("sweep.json").path); replay a trial with: lrtop replay \(p.directory.appendingPathComponent("trials").path)/NAME")
    }
}

/// The runner as the leaderboard's source.
final class SweepBoardSource: LeaderboardSource {
    let runner: SweepRunner
    let title: String
    let trainLine: (SweepSnapshot) -> String?

    init(runner: SweepRunner, title: String, trainLine: @escaping (SweepSnapshot) -> String?) {
        self.runner = runner; self.title = title; self.trainLine = trainLine
    }

    func model() -> LeaderboardModel {
        let s = runner.snapshot
        let running = s.trials.filter { $0.state == .running }.count
        let trialRungs = s.trials.map(\.rungsDone).reduce(0, +)
        var progress = "rung \(s.rung + 1)/\(s.budgets.count) · step \(s.budgets[s.rung]) · \(trialRungs) trial-rungs done"
        if running > 0 { progress += " · \(running) running" }
        progress += " · " + Format.duration(s.elapsed)
        var footer: [String] = []
        if s.finished {
            if let b = s.best {
                footer.append((s.interrupted ? "stopped · best so far " : "done · best ") + "\(s.configurations[b].name): \(s.configurations[b].label)")
                if let line = trainLine(s) { footer.append(line) }
            } else {
                footer.append(s.interrupted ? "stopped before any configuration finished a rung" : "no configuration finished a rung")
            }
        }
        return LeaderboardModel(title: title, progress: s.finished ? (s.interrupted ? "stopped" : "done") + " · " + Format.duration(s.elapsed) : progress,
                                columns: SweepTable.columns, rows: SweepTable.rows(s), finished: s.finished, footer: footer,
                                details: SweepTable.details(s, directory: runner.directory))
    }

    func stop() { runner.requestStop() }
}
