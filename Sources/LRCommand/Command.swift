import Foundation

/// One command of lrtop's steering language. The same text is accepted at the TUI's `:` prompt, bound to keys,
/// and read from `--commands` scripts (`@STEP COMMAND`), so every intervention is reproducible and logged.
///
///     lr 3e-4            set the LR of every group (or `lr head 1e-3` for one group)
///     lr *0.5 | lr /2    scale it
///     lr hold | release  pin the LR against the scheduler / hand it back to the schedule as planned
///     lr reset           back to the base LR and restart the schedule
///     sched SPEC         switch scheduler now, continuing from the current LR
///     warmup N           re-warm from a low LR up to the scheduled one over N steps
///     pause | resume | step [N] | stop | ckpt | rollback | eval
///     fork lr=1e-3,1e-4 steps=300        train one "what if" branch per value from here (or quoted command lists:
///     fork 'sched cosine' | 'lr *0.5; warmup 50' steps=300 [jobs=2]), then `adopt K` or `drop`
///     find-lr [start=1e-7] [end=10] [steps=100]   LR range test from here; the run's state is restored after
///     pace 20/s | pace *2 | pace /2 | pace off     hold the run to at most N steps a second, so a person can watch
///                        and steer a fast run (the steps are the same; only the wait between them changes)
public enum Command: Equatable, Sendable {
    public enum LRChange: Equatable, Sendable {
        case set(Double)
        case scale(Double)
        case hold
        case release
        case reset
    }
    /// How fast the run may go: at most N optimizer steps a second, a factor on the pace in force, or full speed.
    public enum PaceChange: Equatable, Sendable {
        case set(Double)
        case scale(Double)
        case off
    }
    case lr(group: String?, LRChange)
    case sched(String)
    case warmup(Int)
    case pause
    case resume
    case step(Int)
    case stop
    case checkpoint
    case rollback
    case eval
    case fork(Fork)
    case adopt(Int)
    case drop

    /// "What if" branches from the current state: each trains `steps` steps after its own commands; the main run
    /// waits at the fork point until one is adopted or all are dropped.
    public struct Fork: Equatable, Sendable {
        public struct Branch: Equatable, Sendable {
            /// The branch as the user wrote it (`lr 1e-3`, `sched cosine; lr *0.5`), for the table and the logs.
            public let label: String
            /// Each command's text, as the branch's log shows it.
            public let texts: [String]
            public let commands: [Command]
            public init(label: String, texts: [String], commands: [Command]) {
                self.label = label; self.texts = texts; self.commands = commands
            }
        }
        public let branches: [Branch]
        public let steps: Int
        /// How many branches train at once.
        public let jobs: Int
        public init(branches: [Branch], steps: Int, jobs: Int = 1) {
            self.branches = branches; self.steps = steps; self.jobs = jobs
        }
        public static let maxBranches = 16
    }

    /// The LR range test (fastai's `lr_find`): sweep, suggest, restore.
    case findLR(LRRangeSettings)
    /// The run's pace (`pace 20/s`): the trainer waits between steps so that it takes at most that many a second.
    case pace(PaceChange)

    /// The fastest pace a run can be held to, in steps a second: beyond it a pace is full speed in all but name.
    public static let maxPace = 1_000_000.0

    /// The verbs, for help texts and error messages.
    public static let verbs = ["lr", "sched", "warmup", "pause", "resume", "step", "stop", "ckpt", "rollback", "eval", "find-lr",
                               "fork", "adopt", "drop", "pace"]

    /// Whether a checkpoint is taken before applying it automatically (a scheduler switch, a large LR jump).
    public func isRisky(currentLRs: [Double]) -> Bool {
        switch self {
        case .sched, .lr(_, .reset): return true
        case .lr(_, .scale(let f)): return f >= 4 || f <= 0.25
        case .lr(_, .set(let v)):
            return currentLRs.contains { old in old > 0 && (v / old >= 4 || v / old <= 0.25) }
        default: return false
        }
    }
}

extension Float32 {
    /// The largest LR a float32 parameter can be stepped with (`lr 1e39` would overflow at the next step).
    public static let maxLR = Double(Float32.greatestFiniteMagnitude)
}

public struct CommandError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum CommandParser {
    /// Parses one command. Errors are one line a person can act on.
    public static func parse(_ text: String) throws(CommandError) -> Command {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let verb = words.first?.lowercased() else {
            throw CommandError("empty command: try one of \(Command.verbs.joined(separator: ", "))")
        }
        let args = Array(words.dropFirst())
        func noArgs(_ c: Command) throws(CommandError) -> Command {
            guard args.isEmpty else { throw CommandError("'\(verb)' takes no argument, got '\(args.joined(separator: " "))'") }
            return c
        }
        switch verb {
        case "lr": return try parseLR(args)
        case "sched", "scheduler":
            guard !args.isEmpty else {
                throw CommandError("'sched' needs a scheduler spec, e.g. 'sched cosine:T_max=2000' or 'sched warmup:steps=100 -> cosine'")
            }
            return .sched(args.joined(separator: " "))
        case "warmup":
            guard args.count == 1, let n = Int(args[0]), n > 0 else {
                throw CommandError("'warmup' needs a positive number of steps, e.g. 'warmup 200'")
            }
            return .warmup(n)
        case "pause": return try noArgs(.pause)
        case "resume", "continue": return try noArgs(.resume)
        case "step", "n":
            if args.isEmpty { return .step(1) }
            guard args.count == 1, let n = Int(args[0]), n > 0 else {
                throw CommandError("'step' takes an optional positive count, e.g. 'step' or 'step 10'")
            }
            return .step(n)
        case "stop", "quit": return try noArgs(.stop)
        case "ckpt", "checkpoint": return try noArgs(.checkpoint)
        case "rollback": return try noArgs(.rollback)
        case "eval": return try noArgs(.eval)
        case "fork":
            let rest = text.drop { $0 == " " || $0 == "\t" }.drop { $0 != " " && $0 != "\t" }
            return try ForkParser.parse(String(rest))
        case "adopt":
            guard args.count == 1, let k = Int(args[0]), k > 0 else {
                throw CommandError("'adopt' needs one branch number, e.g. 'adopt 2' (branches are numbered from 1)")
            }
            return .adopt(k)
        case "drop": return try noArgs(.drop)
        case "find-lr", "findlr": return try parseFindLR(args)
        case "pace": return try parsePace(args)
        default:
            throw CommandError("unknown command '\(verb)': valid commands are \(Command.verbs.joined(separator: ", "))")
        }
    }

    private static func parseFindLR(_ args: [String]) throws(CommandError) -> Command {
        do { return .findLR(try LRRangeSettings(arguments: args)) } catch { throw CommandError(error.description) }
    }

    /// `pace 20/s` (or `pace 20`), `pace *2`, `pace /2`, `pace off` (or `full`).
    private static func parsePace(_ args: [String]) throws(CommandError) -> Command {
        let usage = "use 'pace 20/s' (at most 20 steps a second), 'pace *2', 'pace /2' or 'pace off' (full speed)"
        guard args.count == 1 else { throw CommandError(args.isEmpty ? "'pace' needs a rate: \(usage)" : "too many arguments to 'pace': \(usage)") }
        let arg = args[0].lowercased()
        if arg == "off" || arg == "full" { return .pace(.off) }
        if let op = arg.first, op == "*" || op == "/" || op == "x" {
            let number = String(arg.dropFirst())
            guard let f = Double(number), f.isFinite, f > 0, f <= Command.maxPace, 1 / f <= Command.maxPace else {
                throw CommandError("invalid pace factor '\(number)': expected a positive number, e.g. 'pace *2' or 'pace /2'")
            }
            return .pace(.scale(op == "/" ? 1 / f : f))
        }
        let number = arg.hasSuffix("/s") ? String(arg.dropLast(2)) : arg
        guard let rate = Double(number), rate.isFinite, rate > 0, rate <= Command.maxPace else {
            throw CommandError("invalid pace '\(args[0])': expected steps a second from 0 (excluded) to 1e6, e.g. 'pace 20/s'; \(usage)")
        }
        return .pace(.set(rate))
    }

    private static func parseLR(_ args: [String]) throws(CommandError) -> Command {
        let usage = "use 'lr 3e-4', 'lr *0.5', 'lr /2', 'lr hold', 'lr release', 'lr reset', or 'lr GROUP ...'"
        var rest = args
        var group: String? = nil
        if rest.count == 2 {
            group = rest.removeFirst()
        }
        guard rest.count == 1 else {
            throw CommandError(rest.isEmpty ? "'lr' needs a value: \(usage)" : "too many arguments to 'lr': \(usage)")
        }
        let arg = rest[0]
        switch arg.lowercased() {
        case "hold", "pin": return .lr(group: group, .hold)
        case "release", "unpin": return .lr(group: group, .release)
        case "reset": return .lr(group: group, .reset)
        default: break
        }
        if let op = arg.first, op == "*" || op == "/" || op == "x" {
            let number = String(arg.dropFirst())
            // Within float32's range both ways (`lr *1e300`, `lr /1e-39`): what trains is float32.
            guard let f = Double(number), f > 0, f <= Float32.maxLR, 1 / f <= Float32.maxLR else {
                throw CommandError("invalid LR factor '\(number)' in 'lr \(arg)': expected a positive number within float32's range (1e-38 to 3.4e38), e.g. 'lr *0.5'")
            }
            return .lr(group: group, .scale(op == "/" ? 1 / f : f))
        }
        guard let v = Double(arg) else {
            throw CommandError("invalid LR '\(arg)': expected a number like 3e-4, or \(usage)")
        }
        guard v.isFinite, v >= 0, v <= Float32.maxLR else {
            throw CommandError("invalid LR '\(arg)': must be a finite number >= 0 within float32's range (at most 3.4e38)")
        }
        return .lr(group: group, .set(v))
    }
}

/// A `--commands` script: one `@STEP COMMAND` per line; `#` starts a comment. `@STEP` means "once STEP optimizer
/// steps have been taken" (`@0` applies before the first step).
public struct CommandScript: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let step: Int
        /// The line's command as written, and as parsed once, when the script is read.
        public let text: String
        public let command: Command
        /// The line number in the file (0 for an entry a program made).
        public let line: Int

        public init(step: Int, command: Command, text: String? = nil, line: Int = 0) {
            self.step = step; self.command = command; self.text = text ?? command.description; self.line = line
        }
    }
    public let entries: [Entry]
    /// The script's file name, for `file:line` messages.
    public let name: String

    public init(entries: [Entry], name: String = "script") { self.entries = entries; self.name = name }

    /// Parses the whole script up front, so a typo is reported before training starts, with its line number.
    public static func parse(_ source: String, name: String) throws(CommandError) -> CommandScript {
        var entries: [Entry] = []
        for (i, raw) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            guard line.hasPrefix("@") else {
                throw CommandError("\(name):\(i + 1): expected '@STEP COMMAND', e.g. '@500 lr *0.1', got '\(line)'")
            }
            let parts = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
            guard let step = Int(parts[0]), step >= 0 else {
                throw CommandError("\(name):\(i + 1): '@\(parts[0])' is not a step number")
            }
            guard parts.count == 2 else { throw CommandError("\(name):\(i + 1): missing command after '@\(step)'") }
            let text = parts[1].trimmingCharacters(in: .whitespaces)
            let command: Command
            do { command = try CommandParser.parse(text) } catch {
                throw CommandError("\(name):\(i + 1): \(error.description)")
            }
            entries.append(Entry(step: step, command: command, text: text, line: i + 1))
        }
        return CommandScript(entries: entries.enumerated().sorted {
            ($0.element.step, $0.offset) < ($1.element.step, $1.offset)
        }.map(\.element), name: name)
    }
}
