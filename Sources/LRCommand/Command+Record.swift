import Foundation

// A command as a record: the JSON object the run log's events carry under "command" and the shared vectors'
// "parsed" form (spec/steering_vectors.json), which the Python bridge writes and reads alike:
//
//     {"verb":"lr","change":"set","value":0.0003}          {"verb":"lr","group":"head","change":"scale","value":0.5}
//     {"verb":"lr","change":"hold"}                         {"verb":"sched","spec":"cosine:T_max=200"}
//     {"verb":"warmup","count":200}   {"verb":"step","count":1}   {"verb":"pause"}   {"verb":"ckpt"}
//     {"verb":"fork","steps":300,"jobs":1,"branches":[{"label":"lr 1e-3","commands":[{"verb":"lr",...}]}]}
//     {"verb":"adopt","branch":2}     {"verb":"find-lr","start":1e-07,"end":10,"count":100}
//     {"verb":"pace","change":"set","value":20}   {"verb":"pace","change":"scale","value":0.5}   {"verb":"pace","change":"off"}
//
// `/F` is the factor 1/F. A record read back is held to the parser's rules (a negative LR, a fork of 17 branches,
// a find-lr with start > end are refused), so a file can never hand the trainer or the UI a command the language
// could not express.

extension Command: Codable {
    enum Key: String, CodingKey {
        case verb, group, change, value, spec, count, steps, jobs, branches, branch, start, end, label, commands
    }

    /// The record's `verb`: the language's own name of the command.
    public var verb: String {
        switch self {
        case .lr: "lr"
        case .sched: "sched"
        case .warmup: "warmup"
        case .pause: "pause"
        case .resume: "resume"
        case .step: "step"
        case .stop: "stop"
        case .checkpoint: "ckpt"
        case .rollback: "rollback"
        case .eval: "eval"
        case .fork: "fork"
        case .adopt: "adopt"
        case .drop: "drop"
        case .findLR: "find-lr"
        case .pace: "pace"
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(verb, forKey: .verb)
        switch self {
        case let .lr(group, change):
            try c.encodeIfPresent(group, forKey: .group)
            switch change {
            case let .set(v): try c.encode("set", forKey: .change); try c.encode(v, forKey: .value)
            case let .scale(f): try c.encode("scale", forKey: .change); try c.encode(f, forKey: .value)
            case .hold: try c.encode("hold", forKey: .change)
            case .release: try c.encode("release", forKey: .change)
            case .reset: try c.encode("reset", forKey: .change)
            }
        case let .sched(spec): try c.encode(spec, forKey: .spec)
        case let .warmup(n), let .step(n): try c.encode(n, forKey: .count)
        case let .fork(fork):
            try c.encode(fork.steps, forKey: .steps)
            try c.encode(fork.jobs, forKey: .jobs)
            var list = c.nestedUnkeyedContainer(forKey: .branches)
            for branch in fork.branches {
                var b = list.nestedContainer(keyedBy: Key.self)
                try b.encode(branch.label, forKey: .label)
                try b.encode(branch.commands, forKey: .commands)
            }
        case let .adopt(k): try c.encode(k, forKey: .branch)
        case let .findLR(s):
            try c.encode(s.start, forKey: .start)
            try c.encode(s.end, forKey: .end)
            try c.encode(s.steps, forKey: .count)
        case let .pace(change):
            switch change {
            case let .set(v): try c.encode("set", forKey: .change); try c.encode(v, forKey: .value)
            case let .scale(f): try c.encode("scale", forKey: .change); try c.encode(f, forKey: .value)
            case .off: try c.encode("off", forKey: .change)
            }
        case .pause, .resume, .stop, .checkpoint, .rollback, .eval, .drop: break
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let verb = try c.decode(String.self, forKey: .verb)
        func refuse(_ why: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: .verb, in: c, debugDescription: "'\(verb)' record: \(why)")
        }
        let command: Command
        switch verb {
        case "lr":
            let group = try c.decodeIfPresent(String.self, forKey: .group)
            let change: LRChange
            switch try c.decode(String.self, forKey: .change) {
            case "set": change = .set(try c.decode(Double.self, forKey: .value))
            case "scale": change = .scale(try c.decode(Double.self, forKey: .value))
            case "hold": change = .hold
            case "release": change = .release
            case "reset": change = .reset
            case let other: throw refuse("unknown change '\(other)'")
            }
            command = .lr(group: group, change)
        case "sched": command = .sched(try c.decode(String.self, forKey: .spec))
        case "warmup": command = .warmup(try c.decode(Int.self, forKey: .count))
        case "step": command = .step(try c.decodeIfPresent(Int.self, forKey: .count) ?? 1)
        case "pause": command = .pause
        case "resume": command = .resume
        case "stop": command = .stop
        case "ckpt": command = .checkpoint
        case "rollback": command = .rollback
        case "eval": command = .eval
        case "drop": command = .drop
        case "adopt": command = .adopt(try c.decode(Int.self, forKey: .branch))
        case "find-lr":
            command = .findLR(LRRangeSettings(start: try c.decode(Double.self, forKey: .start),
                                              end: try c.decode(Double.self, forKey: .end),
                                              steps: try c.decode(Int.self, forKey: .count)))
        case "pace":
            switch try c.decode(String.self, forKey: .change) {
            case "set": command = .pace(.set(try c.decode(Double.self, forKey: .value)))
            case "scale": command = .pace(.scale(try c.decode(Double.self, forKey: .value)))
            case "off": command = .pace(.off)
            case let other: throw refuse("unknown change '\(other)'")
            }
        case "fork":
            var list = try c.nestedUnkeyedContainer(forKey: .branches)
            var branches: [Fork.Branch] = []
            while !list.isAtEnd {
                guard branches.count < Fork.maxBranches else { throw refuse("more than \(Fork.maxBranches) branches") }
                let b = try list.nestedContainer(keyedBy: Key.self)
                let commands = try b.decode([Command].self, forKey: .commands)
                branches.append(Fork.Branch(label: try b.decode(String.self, forKey: .label),
                                            texts: commands.map(\.description), commands: commands))
            }
            command = .fork(Fork(branches: branches, steps: try c.decode(Int.self, forKey: .steps),
                                 jobs: try c.decodeIfPresent(Int.self, forKey: .jobs) ?? 1))
        default:
            throw refuse("unknown verb (valid: \(Command.verbs.joined(separator: ", ")))")
        }
        // Held to the language's rules: what the parser would make of the command's own text.
        let reread: Command
        do { reread = try CommandParser.parse(command.description) } catch { throw refuse(error.description) }
        guard reread.verb == command.verb else { throw refuse("reads back as '\(reread.verb)'") }
        self = command
    }
}
