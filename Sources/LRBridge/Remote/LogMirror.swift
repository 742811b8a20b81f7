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
