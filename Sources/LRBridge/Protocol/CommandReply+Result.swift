import LRLog
import LRTUI

extension CommandReply {
    /// The reply to a command from the run's `result` message, worded as the attach dashboard words it: a typed
    /// answer reads as the event the run logs for it (the same words as a run trained here), a message that repeats
    /// the command (`lr *2: ...`) is kept without it. `currentStep`: the step to name when the run gave none.
    public init(result id: Int, text: String, ok: Bool, step: Int?, message: String?, error: String?,
                answer: BridgeAnswer?, currentStep: Int) {
        let prefix = text + ": "
        let said = message.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
        if !ok {
            self.init(id: id, text: text, outcome: .rejected(error ?? "could not apply"), step: step)
        } else if let answer {
            let event = EventRecord(step: step ?? currentStep, kind: .command, text: text, command: answer.command,
                                    result: answer.result, lrsBefore: answer.lrsBefore, lrsAfter: answer.lrsAfter,
                                    message: said, wallTime: .nan)
            self.init(id: id, event: event)
        } else {
            self.init(id: id, text: text, outcome: .applied, message: said, step: step)
        }
    }

    /// The reply to a command the run refused on arrival (`ack` with ok false).
    public init(refused id: Int, text: String, error: String?) {
        self.init(id: id, text: text, outcome: .rejected(error ?? "refused by the run"))
    }

    /// The reason of a rejected reply ("" when it applied).
    public var rejection: String {
        if case .rejected(let why) = outcome { return why }
        return ""
    }
}
