import Glibc

/// A run log on another host, copied as it grows into a local file that `WatchSource` follows as it follows any
/// log: `tail -c +N -f` there, through the master connection, appending here. Restarted after a dropped link from
/// the size the copy has, so nothing is read twice or lost. The remote side ends with the link: `tail` is stopped
/// when ssh's stdin closes (this process ended, even by SIGKILL).
final class LogMirror {
    let remote: String
    let local: String
    private(set) var process: Subprocess?
    private var keepOpen: Int32 = -1

    init(remote: String, local: String) {
        self.remote = remote
        self.local = local
    }

    deinit { stop() }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Starts (or restarts) the copy from where the local file ends.
    func start(_ master: SSHMaster) throws(RemoteError) {
        stop()
        let fd = open(local, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RemoteError(.other, "cannot write the local copy of the run's log, \(local): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let q = SSHCommand.quote
        let follow = #"tail -c +"$1" -f "$2" & t=$!; cat >/dev/null; kill $t 2>/dev/null"#
        let command = "sh -c " + q(follow) + " lrtop-follow " + String(Int(st.st_size) + 1) + " " + q(remote)
        process = try master.spawn(command, stdin: .pipe, stdout: .descriptor(fd), stderr: .null)
    }

    func stop() {
        process?.terminate(grace: 0.5)
        process = nil
    }
}

/// The sub-runs a run writes beside its log (`subruns/find-lr-STEP/log.jsonl`: the find-lr sweep the `f` key draws
/// live), listed on request over one long-lived shell there (no process is started there per listing: the script
/// waits on its stdin), each then copied by a `LogMirror` of its own.
final class SubrunLister {
    let runDir: String
    private var process: Subprocess?
    private var received: [UInt8] = []

    init(runDir: String) { self.runDir = runDir }
    deinit { stop() }

    var isRunning: Bool { process?.isRunning ?? false }

    func start(_ master: SSHMaster) throws(RemoteError) {
        stop()
        let script = #"cd "$1" || exit 1; while IFS= read -r _; do for f in subruns/*/log.jsonl; do [ -f "$f" ] && printf '%s\n' "$f"; done; printf '.\n'; done"#
        process = try master.spawn("sh -c " + SSHCommand.quote(script) + " lrtop-subruns " + SSHCommand.quote(runDir),
                                   stdin: .pipe, stdout: .pipe, stderr: .null)
        if let p = process { _ = fcntl(p.output, F_SETFL, O_NONBLOCK) }
        received = []
    }

    /// The sub-run logs there now (relative paths, checked), or nil when the shell does not answer within 5 s.
    func list() -> [String]? {
        guard let p = process, p.isRunning else { return nil }
        let ask: [UInt8] = [UInt8(ascii: "\n")]
        guard ask.withUnsafeBytes({ write(p.input, $0.baseAddress!, 1) }) == 1 else { return nil }
        let deadline = Monotonic.now() + 5
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Monotonic.now() < deadline {
            // The answer ends with a line holding one dot.
            let lines = received.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if let end = lines.dropLast().firstIndex(where: { $0.elementsEqual([UInt8(ascii: ".")]) }) {
                let answer = lines[..<end].map { String(decoding: $0, as: UTF8.self) }
                received.removeFirst(lines[...end].reduce(0) { $0 + $1.count + 1 })
                return answer.filter(Self.isSubrunLog)
            }
            var fds = pollfd(fd: p.output, events: Int16(POLLIN), revents: 0)
            _ = poll(&fds, 1, 100)
            let n = read(p.output, &buffer, buffer.count)
            if n > 0 { received += buffer[0..<n] } else if n == 0 { return nil }
            if received.count > 1 << 20 { return nil }
        }
        return nil
    }

    /// `subruns/NAME/log.jsonl`, NAME of letters, digits, `.`, `_` and `-` (not `.` or `..`).
    static func isSubrunLog(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "subruns", parts[2] == "log.jsonl", parts[1] != ".", parts[1] != "..",
              !parts[1].isEmpty, parts[1].count <= 128 else { return false }
        return parts[1].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    func stop() {
        process?.terminate(grace: 0.5)
        process = nil
    }
}
