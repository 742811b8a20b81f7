import ArgumentParser
import Foundation

@main
struct LRTop: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "lrtop",
        abstract: "htop for neural-network training: train a model, watch its learning rate, loss and throughput live, and steer it from the keyboard.",
        discussion: """
        With no subcommand, lrtop opens the interactive session: it trains the default configuration (MLP on \
        Fashion-MNIST, AdamW with warmup + cosine) and shows it live. Press ? inside for every key.
        """,
        version: version,
        subcommands: [Train.self, Replay.self, Watch.self, Attach.self, Compare.self, Export.self, ExportWeights.self,
                      Bench.self, Themes.self],
        defaultSubcommand: Train.self)
}

/// Errors that end a command: printed as one line, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints a one-line error to stderr and exits non-zero. The run log and checkpoints are never touched here.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("lrtop: error: \(message)\n".utf8))
    exit(code)
}

func printErr(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Flushes stdout so progress lines appear at once when piped.
func flushStdout() { fflush(nil) }
