// What `lrtop compare` shows: the progress while its runs train, and the guide's table at the end.

import Foundation
import LRLog
import LRTrain

/// Progress while comparing: a table redrawn in place on a terminal, or one line per finished epoch.
final class CompareProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let jobs: [CompareJob]
    private let stepsPerEpoch: Int
    private let epochs: Int
    private let live: Bool
    private var step: [Int]
    private var acc: [Double?]
    private var loss: [Double?]
    private var lastDraw = Date.distantPast
    private var drawnLines = 0
    private let start = Date()

    init(jobs: [CompareJob], stepsPerEpoch: Int, epochs: Int, live: Bool) {
        self.jobs = jobs; self.stepsPerEpoch = stepsPerEpoch; self.epochs = epochs; self.live = live
        step = Array(repeating: 0, count: jobs.count)
        acc = Array(repeating: nil, count: jobs.count)
        loss = Array(repeating: nil, count: jobs.count)
    }

    func update(index: Int, record: RunRecord) {
        lock.lock(); defer { lock.unlock() }
        switch record {
        case .step(let s):
            step[index] = s.step
            loss[index] = s.loss
        case .eval(let e):
            acc[index] = e.accuracy
            if !live && e.step % stepsPerEpoch == 0 {
                let j = jobs[index]
                printOut(String(format: "%@ seed %d: epoch %d/%d  test acc %.2f%%  train loss %.4f", j.name, j.seed,
                             e.step / stepsPerEpoch, epochs, e.accuracy * 100, loss[index] ?? .nan))
                flushStdout()
            }
        default: break
        }
        if live && Date().timeIntervalSince(lastDraw) > 0.25 { draw() }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if live { draw() }
    }

    /// Must hold the lock.
    private func draw() {
        lastDraw = Date()
        let total = stepsPerEpoch * epochs
        var out = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        let done = step.reduce(0, +), all = total * jobs.count
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed * Double(all - done) / Double(done) : 0
        out += String(format: "\u{1B}[2Klrtop compare: %d runs, %.0f%% done, %.0f s elapsed, ETA %.0f s\n",
                      jobs.count, 100 * Double(done) / Double(max(1, all)), elapsed, eta)
        for (i, j) in jobs.enumerated() {
            let frac = Double(step[i]) / Double(max(1, total))
            let width = 24
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let name = j.name.padding(toLength: 24, withPad: " ", startingAt: 0)
            out += "\u{1B}[2K  \(name) seed \(j.seed) \(bar) "
            out += String(format: "epoch %2d/%d", min(epochs, step[i] / max(1, stepsPerEpoch) + (frac >= 1 ? 0 : 1)), epochs)
            if let a = acc[i] { out += String(format: "  acc %.2f%%", a * 100) }
            if let l = loss[i] { out += String(format: "  loss %.4f", l) }
            out += "\n"
        }
        drawnLines = jobs.count + 1
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// The guide's table for this machine.
struct CompareTable {
    let results: [CompareResult]
    let order: [String]
    let target: Double
    let epochs: Int

    struct Row {
        var name: String
        var accMean: Double, accStd: Double
        var epochsToTarget: [Int?]
        var loss: Double
        var seconds: Double
        var seeds: Int
    }

    var rows: [Row] {
        order.compactMap { name in
            let rs = results.filter { $0.job.name == name }
            guard !rs.isEmpty else { return nil }
            let accs = rs.map(\.finalAccuracy)
            let mean = accs.reduce(0, +) / Double(accs.count)
            let std = (accs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(accs.count)).squareRoot()
            return Row(name: name, accMean: mean, accStd: std, epochsToTarget: rs.map(\.epochsToTarget),
                       loss: rs.map(\.finalTrainLoss).reduce(0, +) / Double(rs.count),
                       seconds: rs.map(\.seconds).reduce(0, +) / Double(rs.count), seeds: rs.count)
        }
    }

    func render() -> String {
        let head = ["configuration", "top-1 (mean ± sd)", "epochs to \(String(format: "%g", target * 100))%", "final train loss", "s/run"]
        var lines: [[String]] = [head]
        for r in rows {
            let reached = r.epochsToTarget.compactMap { $0 }
            let etc: String
            if reached.isEmpty { etc = "not reached" }
            else {
                let mean = Double(reached.reduce(0, +)) / Double(reached.count)
                etc = String(format: "%.1f", mean) + (reached.count < r.seeds ? " (\(reached.count)/\(r.seeds) seeds)" : "")
            }
            lines.append([r.name, String(format: "%.2f%% ± %.2f", r.accMean * 100, r.accStd * 100), etc,
                          String(format: "%.4f", r.loss), String(format: "%.1f", r.seconds)])
        }
        let widths = head.indices.map { c in lines.map { $0[c].count }.max()! }
        func fmt(_ row: [String]) -> String {
            "| " + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        var out = [fmt(head), "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"]
        out += lines.dropFirst().map(fmt)
        return out.joined(separator: "\n")
    }

    func json() -> String {
        let obj: [String: Any] = ["epochs": epochs, "target": target, "results": rows.map { r in
            ["name": r.name, "top1_mean": r.accMean, "top1_std": r.accStd, "final_train_loss": r.loss,
             "epochs_to_target": r.epochsToTarget.map { $0.map { $0 as Any } ?? NSNull() }, "seconds_per_run": r.seconds] as [String: Any]
        }]
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
