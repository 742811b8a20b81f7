import Foundation
import Testing

/// The package root, from this file's path (Tests/LRTopCLITests/Support/CLI.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The `lrtop` binary built beside this test bundle (the test target depends on the executable, so it is built
/// with the same configuration).
let lrtopBinary: URL = {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lrtop")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    for config in ["release", "debug"] {
        let candidate = packageRoot.appendingPathComponent(".build/\(config)/lrtop")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return beside
}()

/// A copy of the binary at `destination`, mode 0755: for a copied install, or for another user, who may not reach
/// the build folder (a clone under a private 0700 folder). Copied by cp(1), not in this process: another test's fork
/// in this multi-threaded runner would inherit a write descriptor of the copy, and exec would then fail with ETXTBSY
/// ("Text file busy").
func copyOfBinary(to destination: URL) throws -> URL {
    let cp = Process()
    cp.executableURL = URL(fileURLWithPath: "/bin/cp")
    cp.arguments = [lrtopBinary.path, destination.path]
    try cp.run()
    cp.waitUntilExit()
    guard cp.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    chmod(destination.path, 0o755)
    return destination
}

let fashionMNISTInstalled = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
let tmuxInstalled = ["/usr/bin/tmux", "/usr/local/bin/tmux"].contains { FileManager.default.isExecutableFile(atPath: $0) }

struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `lrtop ARGS` as a user would, with stdin closed and stdout/stderr captured (so stdout is not a terminal).
/// `binary` runs another copy of it.
@discardableResult
func lrtop(_ args: [String], in directory: URL? = nil, timeout: TimeInterval = 300,
           environment: [String: String] = [:], binary: URL = lrtopBinary) throws -> Output {
    let process = Process()
    process.executableURL = binary
    process.arguments = args
    if let directory { process.currentDirectoryURL = directory }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drain both pipes while it runs so a chatty process never blocks on a full pipe.
    let outData = ReadBox(), errData = ReadBox()
    let group = DispatchGroup()
    group.enter(); DispatchQueue.global().async { outData.set(out.fileHandleForReading.readDataToEndOfFile()); group.leave() }
    group.enter(); DispatchQueue.global().async { errData.set(err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning { process.terminate(); Issue.record("lrtop \(args.joined(separator: " ")) timed out after \(timeout) s") }
    process.waitUntilExit()
    group.wait()
    return Output(status: process.terminationStatus, stdout: String(decoding: outData.get(), as: UTF8.self),
                  stderr: String(decoding: errData.get(), as: UTF8.self))
}

final class ReadBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A fresh temporary folder, removed by `cleanup()`.
struct TempDir {
    let url: URL
    init(_ label: String = "lrtop-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Reads a run log's lines as JSON objects (Foundation is fine here: tests read small logs).
func readLog(_ path: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.split(separator: "\n").compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

func records(_ log: [[String: Any]], type: String) -> [[String: Any]] {
    log.filter { ($0["type"] as? String) == type }
}

/// A tmux session running a command in a terminal of a given size, for end-to-end tests of the UI.
final class TmuxSession {
    let name: String
    let socket: String

    init(command: String, width: Int = 120, height: Int = 40, directory: URL) throws {
        name = "lrtop-\(UUID().uuidString.prefix(8))"
        socket = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(name)").path
        try tmux(["new-session", "-d", "-s", name, "-x", "\(width)", "-y", "\(height)", "-c", directory.path,
                  "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 \(command); echo LRTOP_EXITED=$?; sleep 60"])
    }

    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        try runCleanly(["/usr/bin/env", "tmux", "-S", socket] + args)
    }

    func send(_ keys: String...) throws { try tmux(["send-keys", "-t", name] + keys) }
    func type(_ text: String) throws { try tmux(["send-keys", "-t", name, "-l", text]) }
    func screen() throws -> String { try tmux(["capture-pane", "-p", "-t", name]) }
    func resize(width: Int, height: Int) throws {
        try tmux(["resize-window", "-t", name, "-x", "\(width)", "-y", "\(height)"])
    }

    /// Waits until the screen contains `text`; returns the screen (records an issue on timeout).
    @discardableResult
    func waitFor(_ text: String, timeout: TimeInterval = 60, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try screen()
            if last.contains(text) { return last }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("timed out waiting for '\(text)' on screen:\n\(last)", sourceLocation: sourceLocation)
        return last
    }

    /// Waits until the screen satisfies `condition`; false on timeout.
    func waitUntil(timeout: TimeInterval, _ condition: (String) -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(try screen()) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    func close() { _ = try? tmux(["kill-server"]) }
}

/// Runs a program and returns its stdout, with no signals blocked and default signal actions in the child.
/// Foundation's `Process` passes on the blocked signals of the test thread that calls it: a tmux server started that
/// way, and every program in its panes, then ignores SIGTERM, SIGINT and SIGWINCH, and `waitUntilExit` can miss the
/// exit of the short-lived tmux client.
func runCleanly(_ argv: [String]) throws -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
    // Not inherited by programs other tests start meanwhile (their copy would keep the pipe open).
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    let spawned = Result { try spawnWithDefaultSignals(argv, &actions, environment: nil) }
    close(fds[1])
    defer { close(fds[0]) }
    let pid = try spawned.get()
    var data = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fds[0], &chunk, chunk.count)
        if n > 0 { data += chunk[0..<n] } else if n == 0 || errno != EINTR { break }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return String(decoding: data, as: UTF8.self)
}

/// Spawn attributes for a child with no signal blocked and every signal at its default action (see `runCleanly`).
func initCleanSpawnAttributes(_ attr: inout posix_spawnattr_t) {
    posix_spawnattr_init(&attr)
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
}

/// `posix_spawn` with no signal blocked and every signal at its default action in the child (see `runCleanly`);
/// `environment` nil: this process's.
func spawnWithDefaultSignals(_ argv: [String], _ actions: inout posix_spawn_file_actions_t,
                             environment: [String: String]?) throws -> pid_t {
    var attr = posix_spawnattr_t()
    initCleanSpawnAttributes(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let cenv: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer { for a in cargs + (cenv ?? []) { free(a) } }
    var pid: pid_t = 0
    let rc = cenv.map { env in env.withUnsafeBufferPointer { posix_spawn(&pid, argv[0], &actions, &attr, cargs, $0.baseAddress) } }
        ?? posix_spawn(&pid, argv[0], &actions, &attr, cargs, environ)
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT) }
    return pid
}
