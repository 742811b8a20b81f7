/// Why a remote run could not be reached, in one line a person can act on, with what kind of failure it is (the
/// reconnect loop retries a dropped network, not a refused login).
public struct RemoteError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The name does not resolve, the port is closed, the network is down, the connection dropped.
        case unreachable
        /// The server refused every key lrtop's ssh could offer without a prompt.
        case authentication
        /// The server's host key is not known, or has changed.
        case hostKey
        /// The server refuses to forward a Unix socket, and no relay program was found there.
        case noForwarding
        /// Nothing to attach to: no live run, the named run has ended, the job is not running.
        case noRun
        /// Slurm's tools are missing, or the job is not (or no longer) running.
        case slurm
        /// A signal (SIGINT, SIGTERM, SIGHUP) arrived while waiting.
        case interrupted(Int32)
        case other
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
