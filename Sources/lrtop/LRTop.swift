import ArgumentParser
import Foundation
import LRLog

@main
struct LRTop: ParsableCommand {
    static let version = LRTopVersion.release
    static let configuration = CommandConfiguration(
        commandName: "lrtop",
        abstract: "htop for neural-network training: train a model, watch its learning rate, loss and throughput live, and steer it from the keyboard.",
        discussion: """
        With no subcommand, lrtop opens the interactive session: it trains the default configuration (MLP on \
        Fashion-MNIST, AdamW with warmup + cosine) and shows it live. Press ? inside for every key.
        """,
        // All three from python/lrtop/_version.py (Sources/LRLog/Version.swift is generated from it).
        version: "lrtop \(version) · Python package \(version) · bridge protocol \(LRTopVersion.bridgeProtocol)",
        subcommands: [Train.self, FindLR.self, Sweep.self, Replay.self, Watch.self, Attach.self, Runs.self, Ls.self, Compare.self, Export.self, ExportWeights.self,
                      Bench.self, Themes.self],
        defaultSubcommand: Train.self)

    static func main() {
        // A closed stdout (`lrtop train --headless | head -3`) must not kill a run with nothing written: writes to
        // it fail instead, and the progress printer stops printing.
        signal(SIGPIPE, SIG_IGN)
        // A file-size limit (`ulimit -f`) makes the write fail with EFBIG, reported like a full disk, instead of
        // killing the process mid-record.
        signal(SIGXFSZ, SIG_IGN)
        let args = Array(CommandLine.arguments.dropFirst())
        do {
            if let first = args.first, let message = unknownCommandMessage(first) { throw CLIError(message, code: 64) }
            var command = try parseAsRoot(args)
            if let typed = command as? any TypedArgumentsCommand {
                // The arguments as typed after the subcommand's name (none for the default subcommand).
                let name = type(of: typed)._commandName
                try typed.run(arguments: args.first == name ? Array(args.dropFirst()) : args)
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            // The one place an error line is printed: every command throws its error here.
            printErr("lrtop: error: \(error.description)")
            Foundation.exit(error.code)
        } catch {
            // An error's text can quote a file or a peer: it leaves through the sanitising writer too.
            let code = exitCode(for: error)
            if code != .success || !(error is CleanExit) {
                let text = fullMessage(for: error)
                if !text.isEmpty { _ = writeLine(text, to: code == .success ? STDOUT_FILENO : STDERR_FILENO) }
                Glibc.exit(code.rawValue)
            }
            exit(withError: error)
        }
    }

    /// `lrtop trian` would reach `train` (the default subcommand) as an unexpected argument; say what it is.
    static func unknownCommandMessage(_ word: String) -> String? {
        guard !word.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.map { $0._commandName }
        guard !names.contains(word), word != "help" else { return nil }
        let close = names.map { (name: $0, distance: editDistance($0, word)) }.filter { $0.distance <= 2 }
            .min { $0.distance < $1.distance }
        let hint = close.map { "did you mean '\($0.name)'? " } ?? ""
        return "unknown command '\(word)': \(hint)(commands: \(names.joined(separator: ", ")); 'lrtop --help' lists them)"
    }
}

/// A command that needs its arguments as typed, not only their parsed values: which options were given (what
/// `--resume` may change, what a `--config` file may not override), or to print a command line that reproduces it.
/// `main` hands them over; `run()` never reads `CommandLine.arguments`.
protocol TypedArgumentsCommand: ParsableCommand {
    func run(arguments: [String]) throws
}

extension TypedArgumentsCommand {
    /// As if nothing was typed beyond the parsed values (`main` calls `run(arguments:)`).
    func run() throws { try run(arguments: []) }
}

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(1, b.count) where !b.isEmpty {
            let old = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = old
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}

/// Errors that end a command: `main` prints `lrtop: error: ` and the line, and exits with `code`.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    let code: Int32
    init(_ description: String, code: Int32 = 1) { self.description = description; self.code = code }
}

/// Ends the command with a one-line error (argument-parser's "throw, don't exit": `main` prints it, once, and
/// exits non-zero; `defer`s and the terminal's restore run on the way). The run log and checkpoints are never
/// touched here.
func fail(_ message: String, code: Int32 = 1) throws -> Never {
    throw CLIError(message, code: code)
}

/// Flushes stdout so progress lines appear at once when piped.
func flushStdout() { fflush(nil) }
