import Foundation
import LRLog

/// Prints headless progress: a line per epoch (and every N steps), errors and guard trips as they happen.
public final class ProgressPrinter: @unchecked Sendable {
    public let every: Int
    public var totalSteps = 0
    public var stepsPerEpoch = 1
    private var lastStep: StepRecord?
    /// Stdout was closed (`| head`): progress lines stop, the run goes on (SIGPIPE is ignored).
    public private(set) var stdoutClosed = false
    public init(every: Int) { self.every = every }

    /// Prints one line unless stdout has failed; a failed write stops the lines, never the run.
    public func line(_ text: String) {
        guard !stdoutClosed else { return }
        fflush(nil)
        if !writeLine(text, to: STDOUT_FILENO) { stdoutClosed = true }
    }

    /// Widths of the step and epoch columns, fixed from the run's totals so they never shift mid-run.
    private var stepWidth: Int { max(6, String(totalSteps).count) }
    private var epochWidth: Int { String(max(1, (totalSteps + max(1, stepsPerEpoch) - 1) / max(1, stepsPerEpoch))).count }
    private func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: " ", count: max(0, width - s.count)) + s
    }

    public func handle(_ record: RunRecord) {
        switch record {
        case .step(let s):
            lastStep = s
            if every > 0 && s.step % every == 0 {
                line("step \(pad(s.step, stepWidth))/\(totalSteps)  epoch \(pad(s.epoch + 1, epochWidth))  "
                     + String(format: "loss %.4f  lr ", s.loss) + lrText(s.lrs)
                     + String(format: "  grad %.3g  %.0f samples/s", s.gradNorm, s.samplesPerSec))
            }
        case .eval(let e):
            let s = lastStep
            let epoch = e.step == 0 ? 0 : (e.step - 1) / max(1, stepsPerEpoch) + 1
            line("epoch \(pad(epoch, epochWidth))  step \(pad(e.step, stepWidth))/\(totalSteps)  "
                 + String(format: "train_loss %.4f  val_loss %.4f  val_acc %.2f%%  lr ", s?.loss ?? .nan, e.loss, e.accuracy * 100)
                 + lrText(s?.lrs ?? []) + String(format: "  %.0f samples/s", s?.samplesPerSec ?? 0))
        case .event(let ev):
            switch ev.kind {
            case .error where ev.text == "log" || ev.text == "checkpoint":
                // Not a command: the run's own files. Stderr as well, where a closed stdout cannot hide it.
                fflush(nil)
                writeLine("lrtop: error at step \(ev.step): \(ev.message ?? "")", to: STDERR_FILENO)
            case .error: line("step \(ev.step): command '\(ev.text)' rejected: \(ev.message ?? "")")
            case .guardTrip: line("step \(ev.step): divergence guard: \(ev.message ?? "")")
            case .command:
                line("step \(ev.step): \(ev.text)  lr \(lrText(ev.lrsBefore)) → \(lrText(ev.lrsAfter))" + (ev.message.map { "  (\($0))" } ?? ""))
            case .rollback, .info: if let m = ev.message { line("step \(ev.step): \(m)") }
            case .checkpoint: break
            }
        case .header, .metrics, .end: break
        }
    }

    public func summary(_ end: EndRecord) {
        var text = "lrtop: \(end.reason) at step \(end.step)"
        if let l = end.finalLoss { text += String(format: ", final train loss %.4f", l) }
        if let a = end.finalAccuracy { text += String(format: ", test accuracy %.2f%%", a * 100) }
        if let b = end.bestAccuracy { text += String(format: " (best %.2f%%)", b * 100) }
        text += String(format: ", %.1f s", end.wallTime)
        if let m = end.message { text += " — \(m)" }
        line(text)
    }
}

func lrText(_ lrs: [Double]) -> String {
    lrs.map { String(format: "%.3g", $0) }.joined(separator: ",")
}
