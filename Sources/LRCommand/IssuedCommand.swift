/// A command on its way from a person to a run: parsed once, where it was typed (or made by a key as a value), and
/// carried with its id, by which the run's answer comes back, and its text, which the run's log keeps as typed.
/// A text that does not parse travels too, with the parser's reason: the run logs it as an error event, so the
/// log holds every command a person sent.
public struct IssuedCommand: Sendable, Equatable {
    public let id: Int
    /// As typed at the prompt, or the command written back (`lr *2` for `]`).
    public let text: String
    public let parsed: Result<Command, CommandError>

    public init(id: Int, text: String, parsed: Result<Command, CommandError>) {
        self.id = id; self.text = text; self.parsed = parsed
    }

    public init(id: Int, command: Command, text: String? = nil) {
        self.init(id: id, text: text ?? command.description, parsed: .success(command))
    }

    /// The command, when the text parsed.
    public var command: Command? { try? parsed.get() }
}
