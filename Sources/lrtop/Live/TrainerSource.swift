import Foundation
import LRTrain
import LRLog
import LRTUI

/// The live trainer as the dashboard sees it: records drained from the trainer's channel, its status mapped to
/// the status panel, and keys turned into commands of the steering language. Everything here is a short read of
/// the channel; the UI never waits on the training step.
final class TrainerSource: RunSource {
    let channel: TrainerChannel
    let title: String
    let cost = ProcessCost()
    var isLive: Bool { true }

    init(channel: TrainerChannel, title: String) {
        self.channel = channel
        self.title = title
    }

    func drain() -> [RunRecord] { channel.drain() }

    /// A command that does not parse is refused here, at once (the prompt stays open with the reason), and still
    /// goes to the trainer, which logs it as an error event like every command that cannot apply.
    func send(_ command: String) -> String? {
        channel.send(command)
        do { _ = try CommandParser.parse(command) } catch { return error.description }
        return nil
    }

    func status() -> LiveStatus {
        let s = channel.status
        var groups: [LiveStatus.Group] = []
        for (g, name) in s.groupNames.enumerated() {
            var notes: [String] = []
            if g < s.overridden.count && s.overridden[g] && !(g < s.held.count && s.held[g]) { notes.append("override") }
            if s.warmupLeft > 0 { notes.append("warmup \(s.warmupLeft) left") }
            groups.append(LiveStatus.Group(name: name, lr: g < s.lrs.count ? s.lrs[g] : .nan,
                                           held: g < s.held.count && s.held[g],
                                           note: notes.isEmpty ? nil : notes.joined(separator: ", ")))
        }
        var planned: LiveStatus.Planned? = nil
        if !s.plan.isEmpty {
            let groupCount = s.plan[0].count
            planned = LiveStatus.Planned(fromStep: s.step + 1,
                                         lrs: (0..<groupCount).map { g in s.plan.map { $0[g] } })
        }
        var details: [LiveStatus.Detail] = [LiveStatus.Detail("model", s.modelSummary), LiveStatus.Detail("data", s.datasetName)]
        details.append(LiveStatus.Detail("checkpoints", "\(s.checkpoints) in memory"))
        if let log = s.logPath { details.append(LiveStatus.Detail("log", log)) }
        if let c = cost.summary() { details.append(LiveStatus.Detail("cost", c)) }
        return LiveStatus(
            title: title, state: s.phase, message: s.message, step: s.step, epoch: s.epoch,
            totalSteps: s.totalSteps, stepsPerEpoch: s.stepsPerEpoch, optimizer: s.optimizerSummary,
            scheduler: s.schedulerStatus.isEmpty ? s.schedulerSpec : s.schedulerStatus, schedulerSpec: s.schedulerSpec,
            groups: groups, gradNorm: s.lastGradNorm, lastEval: s.lastEval, planned: planned,
            schedulerKinds: SchedulerMenuCatalog.kinds(remainingSteps: s.totalSteps - s.step), details: details)
    }
}

/// The schedulers the `s` menu offers, with PyTorch's defaults and the rest of the run where a length is needed.
enum SchedulerMenuCatalog {
    static func kinds(remainingSteps n: Int) -> [SchedulerKind] {
        let rest = "\(max(1, n))"
        func p(_ name: String, _ value: String, _ help: String) -> SchedulerParameter {
            SchedulerParameter(name: name, defaultValue: value, help: help)
        }
        return [
            SchedulerKind(name: "cosine", summary: "cosine annealing to eta_min over T_max steps", parameters: [
                p("T_max", rest, "steps to the minimum (default: the rest of the run)"), p("eta_min", "0", "the minimum LR")]),
            SchedulerKind(name: "constant", summary: "keep the LR as it is", parameters: []),
            SchedulerKind(name: "step", summary: "multiply by gamma every step_size steps", parameters: [
                p("step_size", "\(max(1, n / 3))", "steps between decays"), p("gamma", "0.1", "decay factor")]),
            SchedulerKind(name: "multistep", summary: "multiply by gamma at each milestone", parameters: [
                p("milestones", "\(max(1, n / 2))/\(max(1, 3 * n / 4))", "steps, separated by /"), p("gamma", "0.1", "decay factor")]),
            SchedulerKind(name: "exp", summary: "multiply by gamma every step", parameters: [p("gamma", "0.999", "factor per step")]),
            SchedulerKind(name: "linear", summary: "scale linearly from start_factor to end_factor", parameters: [
                p("start_factor", "1", "factor now"), p("end_factor", "0.1", "factor at the end"),
                p("total_iters", rest, "steps of the ramp")]),
            SchedulerKind(name: "poly", summary: "polynomial decay to 0", parameters: [
                p("total_iters", rest, "steps to 0"), p("power", "1", "the exponent")]),
            SchedulerKind(name: "warm_restarts", summary: "cosine with warm restarts (SGDR)", parameters: [
                p("T_0", "\(max(1, n / 4))", "steps of the first cycle"), p("T_mult", "1", "cycle length factor"),
                p("eta_min", "0", "the minimum LR")]),
            SchedulerKind(name: "onecycle", summary: "one cycle: up to max_lr, then down", parameters: [
                p("max_lr", "", "peak LR (default: the current LR)"), p("total_steps", rest, "length of the cycle"),
                p("pct_start", "0.3", "fraction spent rising")]),
            SchedulerKind(name: "cyclic", summary: "triangular cycles between base_lr and max_lr", parameters: [
                p("max_lr", "", "upper LR (required)"), p("step_size_up", "2000", "steps up"),
                p("mode", "triangular", "triangular, triangular2, exp_range")]),
            SchedulerKind(name: "plateau", summary: "multiply by factor when the validation loss stops improving", parameters: [
                p("factor", "0.1", "decay factor"), p("patience", "10", "evaluations without improvement"),
                p("mode", "min", "min or max"), p("min_lr", "0", "lower bound")]),
        ]
    }
}
