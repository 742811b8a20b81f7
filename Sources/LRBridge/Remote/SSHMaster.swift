import Foundation
import Glibc

/// One master connection to a host (OpenSSH's ControlMaster), shared by everything lrtop does there: listings,
/// forwarded run sockets, relays, log streams. Its control socket is `<PrivateFolder.ssh>/<key>.m`, the key a hash of
/// the host and the ssh command, so lrtop processes share one master per host; it persists `persistSeconds` after
/// its last use (ControlPersist). Each lrtop process holds a shared lock on `<key>.lock` while it uses the master,
/// and the last one to let go of an attach closes it (`close(exitIfLast:)`): `q` leaves no ssh behind.
/// Thread-safe: the attach's reconnect thread and the UI thread use it.
public final class SSHMaster: @unchecked Sendable {
    public let host: String
    public let ssh: SSHCommand
    public let folder: String
    public let controlPath: String
    /// How long an idle master stays (seconds).
    public static let persistSeconds = 300
    /// How long ssh may take to open the TCP connection.
    public static let connectTimeout = 10

    private let key: String
    private let lock = NSLock()
    private var lockFD: Int32 = -1
    private var forwards: [String: String] = [:]   // local path -> remote path
    /// Numbers this process's local forward paths.
    private static let forwardNumbers = ForwardNumbers()

    private final class ForwardNumbers: @unchecked Sendable {
        private let lock = NSLock()
        private var last = 0
        func next() -> Int { lock.withLock { last += 1; return last } }
    }

    /// `host` as the user's ssh knows it (an alias of their config, user@host, an address).
    public init(host: String, ssh: SSHCommand = .fromEnvironment(), folder: String? = nil) throws(RemoteError) {
        try Self.validate(host: host)
        self.host = host
        self.ssh = ssh
        if let folder { self.folder = folder } else { self.folder = try PrivateFolder.ssh() }
        key = Self.key(host: host, ssh: ssh)
        controlPath = self.folder + "/" + key + ".m"
        lockFD = open(self.folder + "/" + key + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if lockFD >= 0 { _ = flock(lockFD, LOCK_SH) }
        Self.removeStaleForwards(in: self.folder)
        RemoteCleanup.shared.add(self)
    }

    deinit { if lockFD >= 0 { Glibc.close(lockFD) } }

    /// A host name that ssh cannot mistake for an option, and that fits on one line.
    public static func validate(host: String) throws(RemoteError) {
        guard !host.isEmpty, !host.hasPrefix("-"),
              !host.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f }) else {
            throw RemoteError(.other, "'\(host)' is not a host name (as in your ssh config, user@host, or an address)")
        }
    }

    /// 12 hex digits of FNV-1a over the ssh command and the host.
    static func key(host: String, ssh: SSHCommand) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in Array((ssh.command ?? "ssh").utf8) + [0] + Array(host.utf8) {
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return String(String(h, radix: 16).suffix(12)).leftPadded(to: 12)
    }

    // MARK: the master

    /// Whether a master answers on the control socket.
    public func isAlive() -> Bool { masterPID() != nil }

    /// The master's process id (`ssh -O check`), nil when none answers.
    public func masterPID() -> pid_t? {
        guard let r = try? Subprocess.run(ssh.argv(SSHCommand.common(controlPath: controlPath) + ["-O", "check", host]),
                                          timeout: 5), r.status == 0 else { return nil }
        let text = r.errorText + r.text
        guard let open = text.range(of: "pid="), let close = text[open.upperBound...].firstIndex(of: ")") else { return -1 }
        return pid_t(text[open.upperBound..<close]) ?? -1
    }

    /// Makes sure a master is up: reuses the one there, or logs in (a few hundred milliseconds on a LAN).
    public func connect(timeout: Double = 30, cancelled: () -> Bool = { false }) throws(RemoteError) {
        lock.lock()
        defer { lock.unlock() }
        if isAlive() { return }
        // A master that died (killed, the network gone) leaves its socket, and ssh will not replace it.
        unlink(controlPath)
        let argv = ssh.argv(SSHCommand.master(controlPath: controlPath, persist: Self.persistSeconds,
                                              connectTimeout: Self.connectTimeout) + [host, "true"])
        let r = try Self.run(argv, timeout: timeout, cancelled: cancelled)
        if r.timedOut {
            if cancelled() { throw RemoteError(.interrupted(SIGINT), "interrupted while connecting to \(host)") }
            throw RemoteError(.unreachable, "cannot reach \(host): no answer within \(Int(timeout)) s")
        }
        guard r.status == 0 else { throw SSHCommand.failure(host: host, stderr: r.errorText, status: r.status) }
        guard isAlive() else {
            throw RemoteError(.other, "ssh to \(host) logged in but no master connection answers on \(controlPath) (does your ssh config or LRTOP_SSH_COMMAND turn ControlMaster off?)")
        }
    }

    // MARK: commands over it

    /// Runs a POSIX shell script there (sent on stdin to `sh -s`, so the login shell only starts `sh`), with
    /// `arguments` as $1, $2 ...; the script's own exit status is in the result. ssh's failures throw.
    public func run(script: String, arguments: [String] = [], timeout: Double = 30,
                    cancelled: () -> Bool = { false }) throws(RemoteError) -> Subprocess.Result {
        let command = (["sh", "-s", "--"] + arguments.map(SSHCommand.quote)).joined(separator: " ")
        let r = try Self.run(clientArgv(command), input: Array(script.utf8), timeout: timeout, cancelled: cancelled)
        if r.timedOut {
            if cancelled() { throw RemoteError(.interrupted(SIGINT), "interrupted while waiting for \(host)") }
            throw RemoteError(.unreachable, "\(host) did not answer within \(Int(timeout)) s")
        }
        if r.status == 255 { throw SSHCommand.failure(host: host, stderr: r.errorText, status: r.status) }
        return r
    }

    /// Starts `command` there through the master (a relay, a log stream); the caller owns the process.
    public func spawn(_ command: String, stdin: Subprocess.Stream, stdout: Subprocess.Stream,
                      stderr: Subprocess.Stream = .pipe) throws(RemoteError) -> Subprocess {
        do {
            return try Subprocess(clientArgv(command), stdin: stdin, stdout: stdout, stderr: stderr)
        } catch {
            throw RemoteError(.other, error.description)
        }
    }

    /// The argv of a client of the master running `command` there (a new login only if the master is gone).
    func clientArgv(_ command: String) -> [String] {
        ssh.argv(SSHCommand.common(controlPath: controlPath) + ["-o", "ControlMaster=no", "-T", host, command])
    }

    // MARK: forwarded sockets

    /// Forwards the Unix socket `remote` to a new short local path in the private folder, through the master.
    public func forward(_ remote: String) throws(RemoteError) -> String {
        guard !remote.contains(":") else {
            throw RemoteError(.noForwarding, "\(remote): ssh cannot forward a socket whose path holds ':'")
        }
        // Numbered across the process, not per master: a runs table holds the fleet's master of a host and opens a
        // dashboard through a second one, and their forwards share the folder.
        let local = "\(folder)/\(key)-\(getpid())-\(Self.forwardNumbers.next()).s"
        unlink(local)
        let spec = local + ":" + remote
        let r = try Self.run(ssh.argv(SSHCommand.common(controlPath: controlPath) + ["-O", "forward", "-L", spec, host]),
                             timeout: 15)
        guard r.status == 0, !r.timedOut else {
            unlink(local)
            let said = r.errorText.split(whereSeparator: \.isNewline).last.map(String.init) ?? "status \(r.status)"
            throw RemoteError(.noForwarding, "\(host) did not forward \(remote): \(said)")
        }
        lock.withLock { forwards[local] = remote }
        return local
    }

    /// Removes a forward made by `forward` (its local socket file too).
    public func cancel(forward local: String) {
        guard let remote = lock.withLock({ forwards.removeValue(forKey: local) }) else { return }
        _ = try? Self.run(ssh.argv(SSHCommand.common(controlPath: controlPath)
                                   + ["-O", "cancel", "-L", local + ":" + remote, host]), timeout: 5)
        unlink(local)
    }

    /// Cancels this process's forwards and lets go of the master: with `exitIfLast`, a master no other lrtop process
    /// uses is closed (with its control socket), otherwise it stays its `persistSeconds`.
    public func close(exitIfLast: Bool) {
        for local in lock.withLock({ Array(forwards.keys) }) { cancel(forward: local) }
        lock.lock()
        defer { lock.unlock() }
        guard lockFD >= 0 else { return }
        // The last user closes the master, or (`ls`) leaves it its ControlPersist time; a host never reached leaves
        // nothing.
        if flock(lockFD, LOCK_EX | LOCK_NB) == 0 && (exitIfLast || !isAlive()) {
            _ = try? Self.run(ssh.argv(SSHCommand.common(controlPath: controlPath) + ["-O", "exit", host]), timeout: 5)
            unlink(controlPath)
            unlink(folder + "/" + key + ".lock")
        }
        Glibc.close(lockFD)
        lockFD = -1
        RemoteCleanup.shared.remove(self)
    }

    static func run(_ argv: [String], input: [UInt8] = [], timeout: Double,
                    cancelled: () -> Bool = { false }) throws(RemoteError) -> Subprocess.Result {
        do {
            return try Subprocess.run(argv, input: input, timeout: timeout, cancelled: cancelled)
        } catch {
            throw RemoteError(.other, error.description + (argv.first == "ssh" ? " (lrtop needs OpenSSH's ssh client)" : ""))
        }
    }

    /// Forwards left by lrtop processes that are gone (killed before they could clean up).
    static func removeStaleForwards(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasSuffix(".s") {
            let parts = name.dropLast(2).split(separator: "-")
            guard parts.count == 3, let pid = pid_t(parts[1]), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + name) }
        }
    }
}

/// What lrtop must undo if it exits on an error path: the masters it holds (their forwards cancelled) and the
/// processes and folders registered with it. Run at exit; each item also cleans itself up on the normal path.
public final class RemoteCleanup: @unchecked Sendable {
    public static let shared = RemoteCleanup()

    private let lock = NSLock()
    private var masters: [ObjectIdentifier: SSHMaster] = [:]
    private var actions: [Int: @Sendable () -> Void] = [:]
    private var next = 0
    private var installed = false

    func add(_ master: SSHMaster) {
        lock.withLock { masters[ObjectIdentifier(master)] = master }
        install()
    }

    func remove(_ master: SSHMaster) {
        lock.withLock { _ = masters.removeValue(forKey: ObjectIdentifier(master)) }
    }

    /// Registers an undo step; returns its handle for `cancel`.
    @discardableResult
    public func add(_ action: @escaping @Sendable () -> Void) -> Int {
        install()
        return lock.withLock {
            next += 1
            actions[next] = action
            return next
        }
    }

    public func cancel(_ handle: Int) {
        lock.withLock { _ = actions.removeValue(forKey: handle) }
    }

    /// Undoes everything still registered (the actions newest first, then the masters).
    public func runAll() {
        let (steps, held) = lock.withLock { () -> ([@Sendable () -> Void], [SSHMaster]) in
            defer { actions.removeAll(); masters.removeAll() }
            return (actions.sorted { $0.key > $1.key }.map(\.value), Array(masters.values))
        }
        for step in steps { step() }
        for master in held { master.close(exitIfLast: true) }
    }

    private func install() {
        let first = lock.withLock { () -> Bool in
            defer { installed = true }
            return !installed
        }
        if first { atexit { RemoteCleanup.shared.runAll() } }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
