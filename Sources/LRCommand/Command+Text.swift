import Foundation

// A command written back as the language spells it: what a key sends (`]` is `lr *2`), what a command read from a
// record shows, and what `CommandParser` reads back as the same command.

extension Command: CustomStringConvertible {
    /// The command as one line of the language: `lr *2`, `lr head 0.001`, `sched cosine:T_max=2000`,
    /// `fork lr=0.001,0.0003 steps=300`. `CommandParser.parse(c.description) == c` for every command the parser
    /// makes (a fork's branch labels aside: they are the branches' texts).
    public var description: String {
        switch self {
        case let .lr(group, change): return "lr " + (group.map { $0 + " " } ?? "") + Self.argument(change)
        case let .sched(spec): return "sched " + spec
        case let .warmup(n): return "warmup \(n)"
        case .pause: return "pause"
        case .resume: return "resume"
        case let .step(n): return n == 1 ? "step" : "step \(n)"
        case .stop: return "stop"
        case .checkpoint: return "ckpt"
        case .rollback: return "rollback"
        case .eval: return "eval"
        case let .fork(fork): return fork.description
        case let .adopt(k): return "adopt \(k)"
        case .drop: return "drop"
        case let .findLR(settings): return settings.commandText
        case let .pace(change):
            switch change {
            case let .set(v): return "pace " + Self.number(v) + "/s"
            case let .scale(f) where f > 0 && f < 1 && 1 / (1 / f) == f: return "pace /" + Self.number(1 / f)
            case let .scale(f): return "pace *" + Self.number(f)
            case .off: return "pace off"
            }
        }
    }

    /// A pace as a person reads it and the language takes it back: `15/s`, `2.5/s`, `0.25/s`, `1200/s`.
    public static func paceText(_ rate: Double) -> String {
        let digits = rate >= 100 ? 0 : rate >= 10 ? 1 : rate >= 1 ? 2 : 3
        var text = String(format: "%.\(digits)f", rate)
        if text.contains(".") { while text.hasSuffix("0") { text.removeLast() }; if text.hasSuffix(".") { text.removeLast() } }
        return text + "/s"
    }

    /// What follows `lr` (and its group): `0.001`, `*2`, `/1.1`, `hold` ...
    static func argument(_ change: LRChange) -> String {
        switch change {
        case let .set(v): return number(v)
        case let .scale(f):
            // A factor below 1 reads better as a division when its inverse is the same number back (`/2`, `/1.1`).
            if f > 0 && f < 1 && 1 / (1 / f) == f { return "/" + number(1 / f) }
            return "*" + number(f)
        case .hold: return "hold"
        case .release: return "release"
        case .reset: return "reset"
        }
    }

    /// The shortest text that reads back as `v`: `2` for 2.0, `0.0003`, `1e-05`.
    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

extension Command.Fork: CustomStringConvertible {
    /// `fork lr=0.001,0.0003 steps=300` when every branch is one `lr` command, else the quoted form
    /// `fork 'sched cosine' | 'lr *0.5; warmup 50' steps=300`; `jobs=N` when more than one.
    public var description: String {
        let jobsText = jobs > 1 ? " jobs=\(jobs)" : ""
        let lrOnly = branches.map { branch -> String? in
            guard branch.commands.count == 1, case let .lr(nil, change) = branch.commands[0] else { return nil }
            return Command.argument(change)
        }
        if !lrOnly.isEmpty, lrOnly.allSatisfy({ $0 != nil }) {
            return "fork lr=" + lrOnly.map { $0! }.joined(separator: ",") + " steps=\(steps)" + jobsText
        }
        let quoted = branches.map { branch -> String in
            let body = branch.commands.map(\.description).joined(separator: "; ")
            let quote = body.contains("'") ? "\"" : "'"
            return quote + body + quote
        }
        return "fork " + quoted.joined(separator: " | ") + " steps=\(steps)" + jobsText
    }
}
