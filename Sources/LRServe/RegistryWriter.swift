import Foundation
import Glibc
import LRBridge

/// This process's entry in the run registry (docs/registry.md): `<host>-<pid>-<8 hex>.json` in
/// `${XDG_STATE_HOME:-$HOME/.local/state}/lrtop/runs/`, mode 0600, written to a temporary name (O_CREAT|O_EXCL|
/// O_NOFOLLOW) and renamed over the entry so readers never see half a file; its heartbeat is rewritten every
/// `heartbeatInterval` by the socket's service thread (never the training loop) and the file is removed at exit.
/// A folder that is a link, another user's, or writable by others is refused in one warning: the run goes on
/// without an entry.
public final class RegistryWriter: @unchecked Sendable {
    public static let heartbeatInterval = 10.0

    public let path: String
    private let folder: String
    private var entry: RegistryEntry
    private var lastBeat = 0.0
    private let lock = NSLock()
    private var removed = false

    /// Writes the entry now; nil (after one `warn` line) when the registry folder cannot be used.
    public init?(entry: RegistryEntry, environment: [String: String] = ProcessInfo.processInfo.environment,
                 warn: (String) -> Void) {
        folder = LocalRegistry.folder(environment: environment)
        self.entry = entry
        var random = SystemRandomNumberGenerator()
        path = folder + "/\(entry.host)-\(entry.pid)-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max, using: &random)) + ".json"
        if let why = Self.prepare(folder) {
            warn("lrtop: warning: \(why); this run is not listed by 'lrtop ls' (attach it by its run folder)")
            return nil
        }
        guard write() else {
            warn("lrtop: warning: cannot write the registry entry \(path): \(String(cString: strerror(errno))); this run is not listed by 'lrtop ls'")
            return nil
        }
        ExitCleanup.add(path)
    }

    /// Rewrites the heartbeat when `heartbeatInterval` passed since the last (the service thread, each round).
    public func beatIfDue(now: Double = Date().timeIntervalSince1970) {
        lock.lock(); defer { lock.unlock() }
        guard !removed, now - lastBeat >= Self.heartbeatInterval else { return }
        _ = write(now: now)
    }

    /// Removes the entry (at exit); later beats write nothing.
    public func remove() {
        lock.lock(); defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        unlink(path)
    }

    private func write(now: Double = Date().timeIntervalSince1970) -> Bool {
        entry.heartbeat = now
        lastBeat = now
        let bytes = entry.encoded()
        // `.<entry>.<8 hex>.tmp` (docs/registry.md): hidden from readers, fresh each time.
        var random = SystemRandomNumberGenerator()
        let temporary = folder + "/.\((path as NSString).lastPathComponent)." + String(format: "%08x", UInt32.random(in: 0...UInt32.max, using: &random)) + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else { unlink(temporary); return false }
        return true
    }

    /// Creates the folder (and missing parents) 0700, or says why the one there may not be used.
    static func prepare(_ folder: String) -> String? {
        var missing: [String] = []
        var p = folder
        while !p.isEmpty && p != "/" && access(p, F_OK) != 0 {
            missing.append(p)
            p = (p as NSString).deletingLastPathComponent
        }
        for dir in missing.reversed() where mkdir(dir, 0o700) != 0 && errno != EEXIST {
            return "cannot create the run registry \(folder): \(String(cString: strerror(errno)))"
        }
        var st = stat()
        guard lstat(folder, &st) == 0 else { return "cannot read the run registry \(folder): \(String(cString: strerror(errno)))" }
        if st.st_mode & S_IFMT == S_IFLNK { return "the run registry \(folder) is a symbolic link (remove it)" }
        guard st.st_mode & S_IFMT == S_IFDIR else { return "the run registry \(folder) is not a folder (remove it)" }
        guard st.st_uid == geteuid() else { return "the run registry \(folder) belongs to user \(st.st_uid), not you (remove it, or set XDG_STATE_HOME)" }
        if st.st_mode & 0o022 != 0 {
            return "the run registry \(folder) is writable by others (mode \(String(st.st_mode & 0o777, radix: 8)); chmod 700 it)"
        }
        return nil
    }
}

/// Files this process must not leave behind (its socket, its registry entry), removed by `atexit` too: a path
/// that ends the process with `exit()` (an error after the run started) still cleans up.
public enum ExitCleanup {
    nonisolated(unsafe) private static var paths: [String] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false

    public static func add(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        paths.append(path)
        if !installed {
            installed = true
            atexit { ExitCleanup.run() }
        }
    }

    static func run() {
        lock.lock(); defer { lock.unlock() }
        for p in paths { unlink(p) }
        paths.removeAll()
    }
}
