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
        subcommands: [Train.self, FindLR.self, Sweep.self, Replay.self, Watch.self, Attach.self, Ls.self, Compare.self, Export.self, ExportWeights.self,
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
        if let first = args.first, let message = unknownCommandMessage(first) { fail(message, code: 64) }
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
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

/// Errors that end a command: printed as one line, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints a one-line error to stderr and exits non-zero. The run log and checkpoints are never touched here.
func fail(_ message: String, code: Int32 = 1) -> Never {
    printErr("lrtop: error: \(message)")
    exit(code)
}

/// One line to stderr, with `write(2)`: `FileHandle.write` traps when the descriptor is closed.
func printErr(_ message: String) {
    fflush(nil)
    _ = writeLine(message, to: STDERR_FILENO)
}

/// Writes `text` and a newline to a descriptor; false when it cannot (a closed pipe: SIGPIPE is ignored).
@discardableResult
func writeLine(_ text: String, to fd: Int32) -> Bool {
    let bytes = Array((text + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        done += n
    }
    return true
}

/// Flushes stdout so progress lines appear at once when piped.
func flushStdout() { fflush(nil) }
