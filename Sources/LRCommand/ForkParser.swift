/// The arguments of `fork`: `lr=V1,V2,...` (branch K runs `lr VK`) or quoted command lists separated by `|`
/// (`'sched cosine:T_max=2000' | 'lr *0.5; warmup 50'`), plus `steps=N` (required) and `jobs=N` (default 1).
/// Quotes are `'` or `"`; inside a branch `;` separates commands; `''` is a branch that changes nothing.
enum ForkParser {
    static let usage = "e.g. 'fork lr=1e-3,1e-4 steps=300' or \"fork 'sched cosine' | 'lr *0.5' steps=300\""
    /// The verbs a branch may run: what changes the LR or its schedule. Flow control belongs to the main run.
    static let branchVerbs = ["lr", "sched", "warmup"]

    private enum Token: Equatable {
        case word(String)
        case quoted(String)
        case bar
    }

    static func parse(_ arguments: String) throws(CommandError) -> Command {
        var lrValues: [String]? = nil
        var quoted: [String] = []
        var steps: Int? = nil
        var jobs: Int? = nil
        var expectBranch = true
        var sawBar = false
        for token in try tokens(arguments) {
            switch token {
            case .quoted(let body):
                guard expectBranch else {
                    throw CommandError("two quoted branches need '|' between them: \(usage)")
                }
                quoted.append(body)
                expectBranch = false
                sawBar = false
            case .bar:
                guard !expectBranch else {
                    throw CommandError("'|' must stand between two quoted branches: \(usage)")
                }
                expectBranch = true
                sawBar = true
            case .word(let word):
                guard let eq = word.firstIndex(of: "=") else {
                    throw CommandError("unexpected '\(word)' in 'fork': quote each branch's commands, \(usage)")
                }
                let key = word[..<eq].lowercased()
                let value = String(word[word.index(after: eq)...])
                switch key {
                case "lr":
                    guard lrValues == nil else { throw CommandError("'lr' given twice in 'fork'") }
                    let values = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                    guard !values.contains(where: \.isEmpty) else {
                        throw CommandError("'fork lr=' needs LR values separated by commas, e.g. lr=1e-3,3e-4,1e-4")
                    }
                    lrValues = values
                case "steps":
                    guard steps == nil else { throw CommandError("'steps' given twice in 'fork'") }
                    guard let n = Int(value), n > 0 else {
                        throw CommandError("invalid steps '\(value)' in 'fork': expected a positive number of steps each branch trains, e.g. steps=300")
                    }
                    steps = n
                case "jobs":
                    guard jobs == nil else { throw CommandError("'jobs' given twice in 'fork'") }
                    guard let n = Int(value), n > 0 else {
                        throw CommandError("invalid jobs '\(value)' in 'fork': expected a positive number of branches to train at once, e.g. jobs=2")
                    }
                    jobs = n
                default:
                    throw CommandError("unknown fork option '\(key)': 'fork' takes lr=V1,V2,... or quoted branches, steps=N and jobs=N")
                }
            }
        }
        if sawBar { throw CommandError("'|' must stand between two quoted branches: \(usage)") }
        if lrValues != nil && !quoted.isEmpty {
            throw CommandError("'fork' takes either lr=V1,V2,... or quoted branches, not both: \(usage)")
        }
        var branches: [Command.Fork.Branch] = []
        if let lrValues {
            for (i, value) in lrValues.enumerated() {
                branches.append(try branch(i + 1, label: "lr \(value)", commands: ["lr \(value)"]))
            }
        } else {
            for (i, body) in quoted.enumerated() {
                let texts = body.split(separator: ";").map { trimmed($0) }.filter { !$0.isEmpty }
                branches.append(try branch(i + 1, label: texts.isEmpty ? "as is" : texts.joined(separator: "; "),
                                           commands: texts))
            }
        }
        guard !branches.isEmpty else {
            throw CommandError("'fork' needs branches: \(usage)")
        }
        guard branches.count <= Command.Fork.maxBranches else {
            throw CommandError("'fork' takes at most \(Command.Fork.maxBranches) branches, got \(branches.count)")
        }
        guard let steps else {
            throw CommandError("'fork' needs steps=N, how many steps each branch trains: \(usage)")
        }
        return .fork(Command.Fork(branches: branches, steps: steps, jobs: jobs ?? 1))
    }

    private static func branch(_ number: Int, label: String, commands texts: [String]) throws(CommandError)
        -> Command.Fork.Branch {
        var commands: [Command] = []
        for text in texts {
            let command: Command
            do { command = try CommandParser.parse(text) } catch {
                throw CommandError("branch \(number): \(error.description)")
            }
            switch command {
            case .lr, .sched, .warmup: commands.append(command)
            default:
                let verb = text.split(whereSeparator: { $0 == " " || $0 == "\t" })[0].lowercased()
                throw CommandError("branch \(number): '\(verb)' cannot run inside a branch: a branch takes \(branchVerbs.joined(separator: ", ")) commands")
            }
        }
        return Command.Fork.Branch(label: label, texts: texts, commands: commands)
    }

    /// Only spaces and tabs separate words in the language (as in `CommandParser`).
    private static func trimmed(_ text: Substring) -> String {
        let isBlank = { (c: Character) in c == " " || c == "\t" }
        return String(text.drop(while: isBlank).reversed().drop(while: isBlank).reversed())
    }

    private static func tokens(_ text: String) throws(CommandError) -> [Token] {
        var result: [Token] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == " " || c == "\t" {
                i = text.index(after: i)
            } else if c == "|" {
                result.append(.bar)
                i = text.index(after: i)
            } else if c == "'" || c == "\"" {
                let start = text.index(after: i)
                guard let end = text[start...].firstIndex(of: c) else {
                    throw CommandError("unterminated quote in 'fork': close each branch's quote, \(usage)")
                }
                result.append(.quoted(String(text[start..<end])))
                i = text.index(after: end)
            } else {
                let end = text[i...].firstIndex { $0 == " " || $0 == "\t" || $0 == "|" || $0 == "'" || $0 == "\"" }
                    ?? text.endIndex
                result.append(.word(String(text[i..<end])))
                i = end
            }
        }
        return result
    }
}
