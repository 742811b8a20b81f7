import Foundation
import Glibc

/// The per-user folder of run sockets, with the rules of python/lrtop/server.py: `${XDG_RUNTIME_DIR:-/tmp}/lrtop-UID`,
/// created 0700, or an existing one that is a real folder of this user's (made private again if it is not). When
/// another user squats it, a fresh private folder beside it is used instead (and removed at close): the log's
/// header names the socket, so `lrtop attach RUN_DIR` still finds it.
public enum SocketFolder {
    public static func standard() -> String {
        let base = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return base + "/lrtop-\(getuid())"
    }

    /// The folder and whether it is a fresh fallback of this process's; `warn` says why once when it is one.
    static func make(_ path: String, warn: (String) -> Void) throws(ServeError) -> (path: String, own: Bool) {
        guard let reason = problem(securing: path) else { return (path, false) }
        let base = (path as NSString).deletingLastPathComponent
        for parent in [base, "/tmp"] {
            var template = Array((parent + "/lrtop-\(getuid())-XXXXXX").utf8CString)
            if let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) {
                let fallback = String(cString: made)
                warn("lrtop: \(path) cannot hold this run's socket (\(reason)); using \(fallback) instead (lrtop attach RUN_DIR finds it through the log's header; remove the squatted folder to go back)")
                return (fallback, true)
            }
        }
        throw ServeError("cannot create a private folder for the run's socket under \(base): \(String(cString: strerror(errno)))")
    }

    /// nil when `path` is (now) a private folder of ours; else why not.
    private static func problem(securing path: String) -> String? {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { return String(cString: strerror(errno)) }
        var st = stat()
        guard lstat(path, &st) == 0 else { return String(cString: strerror(errno)) }
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == getuid() else { return "not a folder owned by you" }
        if st.st_mode & 0o077 != 0 && chmod(path, 0o700) != 0 { return String(cString: strerror(errno)) }
        return nil
    }

    /// Removes the sockets in `folder` of runs whose process is gone (killed before it could remove its own).
    static func removeStaleSockets(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names {
            guard name.hasSuffix(".sock"), let dash = name.firstIndex(of: "-"), let pid = Int32(name[..<dash]),
                  pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            var st = stat()
            let path = folder + "/" + name
            if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        }
    }
}

/// Why a run's socket or registry entry could not be made, in one line a person can act on.
public struct ServeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
