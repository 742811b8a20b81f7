import Glibc

/// A program this process starts (ssh, squeue, scontrol): spawned with `posix_spawnp` in a process group of its own
/// (a Ctrl-C at the terminal reaches lrtop, which then ends its children itself, in order), with no signal blocked
/// or ignored whatever the calling thread blocks, and never on the terminal: its stdin, stdout and stderr are
/// /dev/null, a pipe this process reads, or a descriptor given to it.
public final class Subprocess {
    /// What one of the child's standard descriptors is.
    public enum Stream {
        case null
        /// A pipe: `output`/`errors`/`input` is this process's end.
        case pipe
        /// This descriptor (not closed here).
        case descriptor(Int32)
    }

    public let pid: pid_t
    /// This process's end of the child's stdin, stdout and stderr pipes (-1 when not a pipe). Close-on-exec.
    public private(set) var input: Int32 = -1
    public private(set) var output: Int32 = -1
    public private(set) var errors: Int32 = -1
    /// The exit status once reaped: the code, or 128 + the signal that ended it.
    public private(set) var exitStatus: Int32?

    /// Starts `argv` (looked up in PATH when it has no slash). Errors name the program and why.
    public init(_ argv: [String], stdin: Stream = .null, stdout: Stream = .pipe, stderr: Stream = .pipe,
                environment: [String: String] = [:]) throws(BridgeError) {
        precondition(!argv.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var ours: [Int32] = []      // this process's pipe ends
        var theirs: [Int32] = []    // the child's ends, closed here after the spawn
        func wire(_ stream: Stream, _ target: Int32, childReads: Bool) throws(BridgeError) -> Int32 {
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", childReads ? O_RDONLY : O_WRONLY, 0)
                return -1
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
                return -1
            case .pipe:
                var fds: [Int32] = [-1, -1]
                guard pipe(&fds) == 0 else {
                    throw BridgeError("cannot start \(argv[0]): no pipe (\(String(cString: strerror(errno))))")
                }
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                let (child, mine) = childReads ? (fds[0], fds[1]) : (fds[1], fds[0])
                posix_spawn_file_actions_adddup2(&actions, child, target)
                ours.append(mine)
                theirs.append(child)
                return mine
            }
        }
        do {
            input = try wire(stdin, 0, childReads: true)
            output = try wire(stdout, 1, childReads: false)
            errors = try wire(stderr, 2, childReads: false)
        } catch {
            for fd in ours + theirs { close(fd) }
            throw error
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var env: [String] = []
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            let key = text.split(separator: "=", maxSplits: 1).first.map(String.init) ?? text
            if environment[key] == nil { env.append(text) }
            index += 1
        }
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { env.append("\(k)=\(v)") }

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, cArgs, cEnv)
        for fd in theirs { close(fd) }
        guard rc == 0 else {
            for fd in ours { close(fd) }
            throw BridgeError(rc == ENOENT ? "\(argv[0]): command not found (is it installed and on PATH?)"
                              : "cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
    }

    deinit {
        terminate()
        closePipes()
    }

    /// Whether it has not exited yet (reaps it when it has).
    public var isRunning: Bool {
        if exitStatus != nil { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { exitStatus = Self.decode(status); return false }
        if r < 0 && errno == ECHILD { exitStatus = exitStatus ?? 255; return false }
        return true
    }

    /// Waits for it to exit, up to `timeout` seconds (nil: for ever); nil when it is still running.
    @discardableResult
    public func wait(timeout: Double? = nil) -> Int32? {
        let deadline = timeout.map { Monotonic.now() + $0 }
        while isRunning {
            if let deadline, Monotonic.now() >= deadline { return nil }
            usleep(2_000)
        }
        return exitStatus
    }

    /// SIGTERM, then SIGKILL after `grace` seconds, to its whole process group (a `sh -c` running the user's
    /// LRTOP_SSH_COMMAND takes its ssh along); returns once it is reaped. Nothing when it has exited.
    public func terminate(grace: Double = 1) {
        guard isRunning else { return }
        kill(-pid, SIGTERM)
        if wait(timeout: grace) == nil {
            kill(-pid, SIGKILL)
            wait()
        }
    }

    public func closeInput() {
        if input >= 0 { close(input); input = -1 }
    }

    func closePipes() {
        for fd in [input, output, errors] where fd >= 0 { close(fd) }
        input = -1; output = -1; errors = -1
    }

    static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// What a program printed and how it ended.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// It ran past its time and was ended.
        public var timedOut = false
        public var text: String { String(decoding: stdout, as: UTF8.self) }
        public var errorText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `argv` to its end: `input` on its stdin, its stdout (at most `maxOutput` bytes kept) and stderr
    /// collected. Past `timeout` seconds, or once `cancelled()` says so, it is terminated (`timedOut`).
    public static func run(_ argv: [String], input: [UInt8] = [], timeout: Double = 30, maxOutput: Int = 16 << 20,
                           environment: [String: String] = [:],
                           cancelled: () -> Bool = { false }) throws(BridgeError) -> Result {
        let child = try Subprocess(argv, stdin: .pipe, stdout: .pipe, stderr: .pipe, environment: environment)
        var result = Result(status: 0, stdout: [], stderr: [])
        var pending = input[...]
        if pending.isEmpty { child.closeInput() } else { _ = fcntl(child.input, F_SETFL, O_NONBLOCK) }
        let deadline = Monotonic.now() + timeout
        var open = [child.output, child.errors]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        // A program that exits leaves its pipes to whoever inherited them (ssh's backgrounded master does not, but
        // a user's LRTOP_SSH_COMMAND might): once it has exited, what is already there is read and no more waited for.
        var exited = false
        while !open.isEmpty {
            if !exited && !child.isRunning { exited = true }
            if Monotonic.now() >= deadline || cancelled() {
                result.timedOut = true
                break
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if child.input >= 0 { fds.append(pollfd(fd: child.input, events: Int16(POLLOUT), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), exited ? 0 : 50)
            if n < 0 && errno != EINTR { break }
            if n == 0 && exited { break }
            for p in fds where p.revents != 0 {
                if p.fd == child.input {
                    let written = pending.withUnsafeBytes { Glibc.write(p.fd, $0.baseAddress!, $0.count) }
                    if written > 0 { pending = pending.dropFirst(written) }
                    if written < 0 && errno != EAGAIN && errno != EINTR { pending = [] }
                    if pending.isEmpty { child.closeInput() }
                    continue
                }
                let got = read(p.fd, &buffer, buffer.count)
                if got > 0 {
                    if p.fd == child.output {
                        if result.stdout.count < maxOutput { result.stdout += buffer[0..<min(got, maxOutput - result.stdout.count)] }
                    } else if result.stderr.count < 65_536 {
                        result.stderr += buffer[0..<min(got, 65_536 - result.stderr.count)]
                    }
                } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == p.fd }
                }
            }
        }
        if result.timedOut { child.terminate(grace: 0.5) }
        result.status = child.wait() ?? 255
        child.closePipes()
        return result
    }
}

@available(*, unavailable, message: "a Subprocess is used from one thread")
extension Subprocess: Sendable {}

/// Monotonic seconds (CLOCK_MONOTONIC), for deadlines and backoff.
public enum Monotonic {
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
