import Foundation
import LRTrain
import LRLog
import LRTUI
import LRCommand

/// The live trainer as the dashboard sees it: records drained from the trainer's channel, its status mapped to
/// the status panel, commands (values, with ids) into the channel and the trainer's answers by id out of it.
/// Everything here is a short read of the channel; the UI never waits on the training step.
final class TrainerSource: RunSource {
    let channel: TrainerChannel
    let title: String
    let cost = ProcessCost()
    var isLive: Bool { true }
    /// The run is served on its socket and the process can hand the terminal back (`Detach`).
    let canDetach: Bool

    init(channel: TrainerChannel, title: String, canDetach: Bool = false) {
        self.channel = channel
        self.title = title
        self.canDetach = canDetach
    }

    func drain() -> [RunRecord] { channel.drain() }

    var runFolder: URL? { channel.status.runDirectory.map { URL(fileURLWithPath: $0) } }

    func send(_ command: Command, text: String) throws(CommandError) -> Int {
        channel.send(command, text: text)
    }

    /// The trainer logs it as an error event, like every command that cannot apply.
    func noteRefused(_ text: String, because error: CommandError) {
        channel.send(refused: text, because: error)
    }

    func takeReplies() -> [CommandReply] {
        channel.takeReplies().map { CommandReply(id: $0.id, event: $0.event) }
    }

    /// The `s` menu's schedulers, sized to the rest of the run (built when the menu opens).
    func schedulerKinds() -> [SchedulerKind] {
        let s = channel.status
        return SchedulerMenuCatalog.kinds(remainingSteps: s.totalSteps - s.step, stepsPerEpoch: s.stepsPerEpoch)
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
        // First, so a narrow terminal keeps it: why a run goes slowly, and how to go faster.
        if let pace = s.pace { details.insert(LiveStatus.Detail("pace", Command.paceText(pace) + " (< > :pace off)"), at: 0) }
        details.append(LiveStatus.Detail("checkpoints", "\(s.checkpoints) in memory"))
        if let log = s.logPath { details.append(LiveStatus.Detail("log", log)) }
        if let c = cost.summary() { details.append(LiveStatus.Detail("cost", c)) }
        var live = LiveStatus(
            title: title, state: s.phase, message: s.message, step: s.step, epoch: s.epoch,
            totalSteps: s.totalSteps, stepsPerEpoch: s.stepsPerEpoch, optimizer: s.optimizerSummary,
            scheduler: s.schedulerStatus.isEmpty ? s.schedulerSpec : s.schedulerStatus, schedulerSpec: s.schedulerSpec,
            groups: groups, planned: planned, details: details)
        live.logPath = s.logPath
        live.pace = s.pace
        return live
    }
}
