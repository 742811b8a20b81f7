import Glibc

/// How lrtop runs the user's own OpenSSH client (their config, keys, agent, ProxyJump): `ssh`, or
/// `$LRTOP_SSH_COMMAND`, which replaces the command and its options as `GIT_SSH_COMMAND` does for git (a shell
/// runs it with the arguments appended: `LRTOP_SSH_COMMAND="ssh -F ~/.ssh/cluster_config"`).
public struct SSHCommand: Equatable, Sendable {
    /// The user's replacement for `ssh`, nil for `ssh` itself.
    public var command: String?

    public init(command: String? = nil) {
        self.command = command.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
    }

    /// From the environment (`LRTOP_SSH_COMMAND`).
    public static func fromEnvironment() -> SSHCommand {
        SSHCommand(command: getenv("LRTOP_SSH_COMMAND").map { String(cString: $0) })
    }

    /// The argv that runs ssh with `arguments`.
    public func argv(_ arguments: [String]) -> [String] {
        guard let command else { return ["ssh"] + arguments }
        // git's way: `sh -c '<command> "$@"' <name> <arguments>`, so the user's quoting and ~ work as in a shell.
        return ["/bin/sh", "-c", command + " \"$@\"", "lrtop-ssh"] + arguments
    }

    /// Options for every call: never a prompt (lrtop owns the terminal), and the master connection's socket.
    static func common(controlPath: String) -> [String] {
        ["-o", "BatchMode=yes", "-o", "ControlPath=" + controlPath]
    }

    /// Options of the master connection, which carries every forward, relay and listing to one host: it stays
    /// `persist` seconds after its last user (so the next `lrtop ls` or attach starts at once), notices a dead
    /// network within 15 s, and creates forwarded sockets owner-only, replacing a stale one.
    static func master(controlPath: String, persist: Int, connectTimeout: Int) -> [String] {
        common(controlPath: controlPath) + [
            "-o", "ControlMaster=yes", "-o", "ControlPersist=\(persist)",
            "-o", "ConnectTimeout=\(connectTimeout)", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
            "-o", "StreamLocalBindUnlink=yes", "-o", "StreamLocalBindMask=0177", "-o", "ExitOnForwardFailure=yes",
        ]
    }

    /// A word the remote shell (whatever the user's login shell is: sh, bash, zsh, fish) reads back as itself.
    public static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// ssh's own message (its last lines on stderr) as the one line of a `RemoteError` naming `host`.
    public static func failure(host: String, stderr: String, status: Int32) -> RemoteError {
        let lines = stderr.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("Warning: Permanently added") }
        let said = lines.suffix(2).joined(separator: "; ")
        let text = said.lowercased()
        if text.contains("permission denied") || text.contains("too many authentication failures") {
            return RemoteError(.authentication, "\(host) refused the login (\(said)): lrtop runs ssh with BatchMode=yes, so a key must work without a prompt (load it with ssh-add); check with: ssh \(host) true")
        }
        if text.contains("host key verification failed") || text.contains("remote host identification has changed") {
            return RemoteError(.hostKey, "\(host)'s host key is not known or has changed (\(said)): connect once with 'ssh \(host)' to check and accept it")
        }
        let unreachable = ["could not resolve hostname", "connection refused", "connection timed out", "no route to host",
                           "network is unreachable", "connection closed by", "connection reset", "operation timed out",
                           "name or service not known", "temporary failure in name resolution", "broken pipe",
                           "kex_exchange_identification", "connection to", "closed by remote host"]
        if unreachable.contains(where: text.contains) {
            return RemoteError(.unreachable, "cannot reach \(host): \(said)")
        }
        if said.isEmpty { return RemoteError(.unreachable, "ssh to \(host) ended with status \(status) and said nothing") }
        return RemoteError(.other, "ssh to \(host) failed: \(said)")
    }
}
