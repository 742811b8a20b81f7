import Foundation
import Synchronization

/// What the trainer thread is doing right now and since when: the answer a control socket gives to `stacks`
/// (docs/bridge.md), read from another thread while the trainer may be stuck in the middle of a step. Setting it
/// is three relaxed atomic stores and a clock read at each phase change: nothing allocated, no lock.
public final class TrainerActivity: Sendable {
    public enum Phase: Int, Sendable, CaseIterable {
        case starting, loadingBatch, forward, backward, optimizerStep, evaluating, checkpoint, commands, paused, pacing,
             branches, finishing, finished

        /// The phase in a few words, as the stacks view shows it.
        public var words: String {
            switch self {
            case .starting: "starting"
            case .loadingBatch: "waiting for data"
            case .forward: "forward"
            case .backward: "backward"
            case .optimizerStep: "optimizer step"
            case .evaluating: "evaluating"
            case .checkpoint: "checkpoint"
            case .commands: "applying commands"
            case .paused: "paused"
            case .pacing: "waiting for its pace"
            case .branches: "training branches"
            case .finishing: "finishing (final checkpoint, log)"
            case .finished: "finished"
            }
        }
    }

    private let phase = Atomic<Int>(Phase.starting.rawValue)
    private let since = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    private let step = Atomic<Int>(0)

    public init() {}

    /// The trainer enters `phase` at `step` (the clock restarts only when the phase changes).
    func enter(_ phase: Phase, step: Int) {
        self.step.store(step, ordering: .relaxed)
        if self.phase.exchange(phase.rawValue, ordering: .relaxed) != phase.rawValue {
            since.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        }
    }

    /// The phase now, the step it is at and for how many seconds it has been in that phase.
    public func snapshot() -> (phase: Phase, step: Int, seconds: Double) {
        let p = Phase(rawValue: phase.load(ordering: .relaxed)) ?? .starting
        let start = since.load(ordering: .relaxed)
        let now = DispatchTime.now().uptimeNanoseconds
        return (p, step.load(ordering: .relaxed), now > start ? Double(now - start) / 1e9 : 0)
    }

    /// "backward · step 1234 · for 2.1 s": the stacks view's line for the trainer thread.
    public func describe() -> String {
        let s = snapshot()
        return "\(s.phase.words) · step \(s.step) · for \(String(format: "%.1f", s.seconds)) s"
    }
}
