import Foundation
import Glibc
import Synchronization
import LRLog
import LRTrain

/// `d` in the live UI: the screen closes, the terminal is restored, the shell's prompt returns, and the run goes on
/// headless, served on its socket for `lrtop attach`.
///
/// A shell gives its prompt back only when the process it started exits, so `lrtop train` splits in two before
/// any thread starts: the process the shell waits on only waits, and the training process (the run: its pid is the
/// one in the socket's name and the registry) does everything else. When the run ends, the waiting process exits
/// with its status, so nothing changes for a run that is never detached; on `d` it exits 0 at once and the run's
/// process goes on by itself, its progress lines in RUN_DIR/console.log, SIGHUP ignored (like nohup).
enum Detach {
    /// The training process's end of the pipe to the waiting process.
    final class Link: Sendable {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
        /// Tells the waiting process to exit 0 now.
        func detached() {
            var byte = UInt8(ascii: "D")
            _ = write(fd, &byte, 1)
            close(fd)
        }
    }

    private static let child = Atomic<Int32>(0)

    /// Splits the process; returns in the training process (nil when it cannot fork: the UI then cannot detach).
    /// Call before any thread starts.
    static func split() -> Link? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        fflush(nil)
        let pid = fork()
        if pid < 0 { close(fds[0]); close(fds[1]); return nil }
        if pid == 0 {
            close(fds[0])
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            return Link(fd: fds[1])
        }
        close(fds[1])
        waitForRun(pid, pipe: fds[0])
    }

    /// The waiting process: keys and signals from the terminal reach the training process too (same process
    /// group), so this one ignores them; a SIGTERM sent to it alone is passed on.
    private static func waitForRun(_ pid: pid_t, pipe fd: Int32) -> Never {
        child.store(pid, ordering: .relaxed)
        signal(SIGINT, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        signal(SIGTERM) { _ in kill(Detach.child.load(ordering: .relaxed), SIGTERM) }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n == 1 && byte == UInt8(ascii: "D") { exit(0) }
            break
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { exit(1) }
        }
        let signalled = status & 0x7f
        exit(signalled == 0 ? (status >> 8) & 0xff : 128 + signalled)
    }

    /// After `d`: one line on the terminal, then stdout and stderr go to `console` (stdin from /dev/null), SIGHUP
    /// is ignored, and the waiting process is told to exit so the shell's prompt returns.
    static func goHeadless(name: String, console: String, link: Link) {
        printOut("detached: run \(name) goes on (pid \(getpid())); lrtop attach \(name) to come back")
        printOut("lrtop: its progress lines go to \(console); SIGHUP no longer ends it (as with nohup): 'lrtop attach' and ':stop', or kill -TERM \(getpid()), end it")
        fflush(nil)
        SignalFlag.install()
        signal(SIGHUP, SIG_IGN)
        let out = open(console, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        let null = open("/dev/null", O_RDWR)
        if null >= 0 { dup2(null, STDIN_FILENO) }
        let target = out >= 0 ? out : null
        if target >= 0 { dup2(target, STDOUT_FILENO); dup2(target, STDERR_FILENO) }
        if out >= 0 { close(out) }
        if null >= 0 { close(null) }
        link.detached()
    }
}

/// Progress lines for a run whose screen was detached: silent until `start`, then what `--headless` prints.
final class DetachedProgress: @unchecked Sendable {
    private let on = Atomic<Bool>(false)
    let printer: ProgressPrinter

    init(every: Int) { printer = ProgressPrinter(every: every) }

    /// The trainer thread, with every record.
    func handle(_ record: RunRecord) {
        if on.load(ordering: .relaxed) { printer.handle(record) }
    }

    func start(totalSteps: Int, stepsPerEpoch: Int) {
        printer.totalSteps = totalSteps
        printer.stepsPerEpoch = stepsPerEpoch
        on.store(true, ordering: .relaxed)
    }
}
