import Foundation
import LRLog

/// A run's options in a file, one `option = value` per line, the option named as on the command line without its
/// dashes (`optimizer = adamw:lr=3e-4`, `group = head.*:lr_scale=2`, `scheduler = warmup:steps=500 -> cosine`).
/// `#` starts a comment; a repeatable option (`group`) may appear several times; a flag takes `true`/`false`.
/// Options given on the command line win over the file's.
enum ConfigFile {
    static func arguments(path: String) throws -> [String] {
        let text: String
        do { text = try FileProblem.readText(path, what: "config file") } catch { throw CLIError("\(error)") }
        var args: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw CLIError("\(path):\(i + 1): expected 'option = value', e.g. 'optimizer = adamw', got '\(line)'")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-")
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw CLIError("\(path):\(i + 1): '\(key)' is not an option name")
            }
            if key == "config" { throw CLIError("\(path):\(i + 1): a config file cannot include another") }
            switch value.lowercased() {
            case "true", "yes", "on": args.append("--\(key)")
            case "false", "no", "off": continue
            default: args += ["--\(key)", value]
            }
        }
        return args
    }
}
