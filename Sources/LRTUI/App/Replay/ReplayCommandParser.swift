/// One command of the replay language, the `:` prompt's language in a replay. It moves the cursor and the
/// playback; nothing in it can change a run (the steering language is LRCommand's `CommandParser`).
///
///     play | resume | pause | step [N]
///     goto STEP|start|end   (or just STEP; also start, end)
///     seek ±N | seek ±N%    (steps, or a share of the run)
///     event next|prev
///     speed up|down|xN      (N from 1 to 1000)
public enum ReplayCommand: Hashable, Sendable {
    public enum Target: Hashable, Sendable { case start, end, step(Int) }
    public enum Seek: Hashable, Sendable { case steps(Double), percent(Double) }
    public enum Speed: Hashable, Sendable { case up, down, exactly(Int) }

    case play
    case pause
    case step(Int)
    case goto(Target)
    case seek(Seek)
    case event(next: Bool)
    case speed(Speed)
}

public enum ReplayCommandParser {
    public static let speedRange = 1...1000
    static let gotoUsage = "goto takes a step, start or end: goto 1200"
    static let speedUsage = "speed up, speed down or speed xN (x1 … x1000)"

    /// Parses one command; the error is one line saying what would be accepted.
    public static func parse(_ text: String) -> Result<ReplayCommand, ReplayCommandError> {
        let words = text.split(separator: " ").map { String($0).lowercased() }
        guard let verb = words.first else { return .failure(ReplayCommandError("empty command: " + summary)) }
        let arg = words.count > 1 ? words[1] : nil
        func fail(_ m: String) -> Result<ReplayCommand, ReplayCommandError> { .failure(ReplayCommandError(m)) }
        if let target = target(verb) , case .step = target { return .success(.goto(target)) }
        switch verb {
        case "play", "resume": return .success(.play)
        case "pause": return .success(.pause)
        case "step":
            guard let arg else { return .success(.step(1)) }
            guard let n = Int(arg), n > 0 else { return fail("step takes a positive count: step 10") }
            return .success(.step(n))
        case "goto", "g":
            guard let arg, let t = target(arg) else { return fail(gotoUsage) }
            return .success(.goto(t))
        case "start", "home": return .success(.goto(.start))
        case "end": return .success(.goto(.end))
        case "seek":
            guard let arg, let d = seek(arg) else { return fail("seek takes ±N steps or ±N%: seek +500, seek -10%") }
            return .success(.seek(d))
        case "event", "events":
            switch arg {
            case "next", "n", "+": return .success(.event(next: true))
            case "prev", "previous", "p", "-": return .success(.event(next: false))
            default: return fail("event next or event prev")
            }
        case "speed":
            switch arg {
            case "up", "+", "faster": return .success(.speed(.up))
            case "down", "-", "slower": return .success(.speed(.down))
            case let a?:
                let digits = a.hasPrefix("x") ? String(a.dropFirst()) : a
                guard let n = Int(digits), speedRange.contains(n) else { return fail(speedUsage) }
                return .success(.speed(.exactly(n)))
            case nil: return fail(speedUsage)
            }
        default:
            return fail("a replay is read-only: '\(verb)' steers live training (here: " + summary + ")")
        }
    }

    static let summary = "play, pause, goto STEP, seek ±N, speed xN"

    static func target(_ word: String) -> ReplayCommand.Target? {
        switch word {
        case "start", "home", "begin": return .start
        case "end", "last": return .end
        default: return Int(word.filter { $0 != "," && $0 != "_" }).map { .step($0) }
        }
    }

    static func seek(_ arg: String) -> ReplayCommand.Seek? {
        var text = Substring(arg)
        var sign = 1.0
        if text.first == "+" { text = text.dropFirst() } else if text.first == "-" { sign = -1; text = text.dropFirst() }
        if text.last == "%" { return Double(text.dropLast()).map { .percent(sign * $0) } }
        return Double(text).map { .steps(sign * $0) }
    }
}

public struct ReplayCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
