import Foundation
import LRCommand
import LRLog
import LRTUI

/// An event as a run's log gives it: the command parsed from its text and its outcome as data (what the trainer
/// writes; built here from the text and message, as for an older log).
func logged(_ event: EventRecord) -> EventRecord {
    guard event.command == nil, event.result == nil,
          case .event(let e)? = try? RunLogLine.decode(RunLogLine.encode(.event(event))) else { return event }
    return e
}

/// A RunSource driven by the test: records to hand out, a status, and the commands it was sent. It answers a
/// command as a run does, by its id, when the event that logs it is handed out.
final class FakeSource: RunSource {
    var pending: [RunRecord] = []
    var current: LiveStatus
    /// The texts of the commands sent, in order.
    var sent: [String] = []
    var commands: [Command] = []
    /// Texts that did not parse at the prompt, which a run logs.
    var refused: [String] = []
    /// Commands that are refused when sent, with their error.
    var rejections: [String: String] = [:]
    let isLive: Bool
    /// The run's folder (its `subruns/`), for the find-lr panel.
    var runFolder: URL?
    /// Sent and not answered yet: (id, text).
    private var unanswered: [(id: Int, text: String)] = []
    private var replies: [CommandReply] = []

    init(status: LiveStatus = FakeSource.defaultStatus, isLive: Bool = true) {
        self.current = status
        self.isLive = isLive
    }

    func drain() -> [RunRecord] {
        defer { pending.removeAll() }
        return pending.map { record in
            guard case .event(let e) = record else { return record }
            let event = logged(e)
            if event.kind == .command || event.kind == .error,
               let i = unanswered.firstIndex(where: { $0.text == event.text }) {
                replies.append(CommandReply(id: unanswered[i].id, event: event))
                unanswered.remove(at: i)
            }
            return .event(event)
        }
    }

    func status() -> LiveStatus { current }

    func send(_ command: Command, text: String) throws(CommandError) -> Int {
        sent.append(text)
        commands.append(command)
        if let e = rejections[text] { throw CommandError(e) }
        unanswered.append((sent.count, text))
        return sent.count
    }

    func noteRefused(_ text: String, because error: CommandError) { refused.append(text) }

    /// Replay commands received (a source that is not live).
    var controls: [ReplayCommand] = []
    func control(_ command: ReplayCommand) -> String? {
        controls.append(command)
        return nil
    }

    func takeReplies() -> [CommandReply] {
        defer { replies.removeAll() }
        return replies
    }

    func schedulerKinds() -> [SchedulerKind] { isLive ? Self.kinds : [] }

    static let kinds: [SchedulerKind] = [
        SchedulerKind(name: "constant", summary: "keep the LR"),
        SchedulerKind(name: "cosine", summary: "cosine annealing to eta_min", parameters: [
            SchedulerParameter(name: "T_max", defaultValue: "1000", help: "steps"),
            SchedulerParameter(name: "eta_min", defaultValue: "0"),
        ]),
        SchedulerKind(name: "step", summary: "multiply by gamma every step_size", parameters: [
            SchedulerParameter(name: "step_size", defaultValue: "100"),
            SchedulerParameter(name: "gamma", defaultValue: "0.1"),
        ]),
    ]

    static var defaultStatus: LiveStatus {
        LiveStatus(title: "mnist-mlp", state: .running, step: 0, epoch: 0, totalSteps: 1000, stepsPerEpoch: 100,
                   optimizer: "adamw lr=1e-3 wd=0.01", scheduler: "cosine T_max=1000",
                   schedulerSpec: "cosine:T_max=1000,eta_min=0",
                   groups: [LiveStatus.Group(name: "body", lr: 1e-3), LiveStatus.Group(name: "head", lr: 2e-3)])
    }

    static func lr(step s: Int, group g: Int) -> Double {
        let base: Double = 1e-3 * (0.5 + 0.5 * Double(1000 - s) / 1000)
        return base * Double(g + 1)
    }

    /// The planned LR from `from` to step 1000, per group.
    static func planned(from: Int, groups: Int = 2) -> LiveStatus.Planned {
        let steps = Array(from...1000)
        var lrs: [[Double]] = []
        for g in 0..<groups { lrs.append(steps.map { lr(step: $0, group: g) }) }
        return LiveStatus.Planned(fromStep: from, lrs: lrs)
    }

    /// A live status as the trainer would give it at step n.
    static func status(at n: Int) -> LiveStatus {
        var st = defaultStatus
        st.step = n
        st.epoch = max(0, (n - 1) / 100)
        st.planned = planned(from: n + 1)
        st.groups = [LiveStatus.Group(name: "body", lr: lr(step: n, group: 0)),
                     LiveStatus.Group(name: "head", lr: lr(step: n, group: 1), held: true, note: "override")]
        return st
    }

    /// Step records 1...n with a cosine-ish LR and decaying loss, evals every 100 steps, events.
    static func records(steps n: Int, groups: Int = 2) -> [RunRecord] {
        var out: [RunRecord] = [.header(RunHeader(lrtopVersion: "0.1", config: ["name": "mnist-mlp"], seed: 1,
                                                  startTime: "2025-01-01T00:00:00Z",
                                                  groups: Array(["body", "head", "emb"].prefix(groups)),
                                                  stepsPerEpoch: 100, totalSteps: 1000))]
        for s in 1...n {
            out.append(.step(StepRecord(step: s, epoch: (s - 1) / 100, lrs: (0..<groups).map { lr(step: s, group: $0) },
                                        loss: 2.0 / Double(s).squareRoot(), gradNorm: 1.5, samplesPerSec: 12_800,
                                        wallTime: Double(s) * 0.01)))
            if s % 100 == 0 {
                out.append(.eval(EvalRecord(step: s, epoch: (s - 1) / 100, loss: 0.4321, accuracy: 0.875, wallTime: Double(s) * 0.01)))
            }
        }
        if n >= 150 {
            out.append(.event(EventRecord(step: 150, kind: .command, text: "lr *2", lrsBefore: [1e-3], lrsAfter: [2e-3],
                                          wallTime: 1.5)))
        }
        if n >= 160 {
            out.append(.event(EventRecord(step: 160, kind: .error, text: "lr abc", lrsBefore: [], lrsAfter: [],
                                          message: "bad value", wallTime: 1.6)))
        }
        return out
    }
}

extension ReplaySource {
    /// A line of the replay language, parsed as the prompt parses it.
    func send(_ text: String) -> String? {
        switch ReplayCommandParser.parse(text) {
        case .failure(let e): return e.description
        case .success(let c): return control(c)
        }
    }
}

extension Buffer {
    /// All rows joined, for `contains` checks.
    var text: String { lines().joined(separator: "\n") }
}

/// The y-axis tick labels of a chart rendered at the buffer's left edge, top to bottom.
func yLabels(_ b: Buffer) -> [String] {
    b.lines().filter { $0.contains("┤") }.map { line in
        String(line.split(separator: "┤", maxSplits: 1, omittingEmptySubsequences: false)[0]).split(separator: " ").joined()
    }
}
