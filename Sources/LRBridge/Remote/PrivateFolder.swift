import Foundation
import Glibc

/// The folders lrtop keeps its SSH sockets and remote copies in: private to the user (0700, theirs, not a link),
/// refused in one line otherwise, and with short paths (a Unix socket's path holds 107 bytes).
public enum PrivateFolder {
    /// Where the master connections' control sockets and the forwarded run sockets live:
    /// `${XDG_RUNTIME_DIR:-/tmp}/lrtop-<uid>/ssh` (the bridge's socket folder, one level down), or the same under
    /// /tmp when that path is too long for a socket.
    public static func ssh() throws(RemoteError) -> String {
        let uid = getuid()
        var bases: [String] = []
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !runtime.isEmpty { bases.append(runtime) }
        bases.append("/tmp")
        for base in bases {
            let parent = base + "/lrtop-\(uid)"
            let folder = parent + "/ssh"
            // The longest name in it: a forward, `<12 hex>-<pid>-<n>.s`, and ssh's temporary name for a control
            // socket, `<name>.<16 random>`, both well under 48 bytes.
            guard folder.utf8.count + 48 < 108 else { continue }
            try ensure(parent)
            try ensure(folder)
            return folder
        }
        throw RemoteError(.other, "no folder with a path short enough for a Unix socket: set XDG_RUNTIME_DIR to a shorter path")
    }

    /// A new private folder for copies of remote logs, `${TMPDIR:-/tmp}/lrtop-remote-XXXXXX` (mkdtemp: 0700, new).
    public static func temporary() throws(RemoteError) -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/lrtop-remote-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RemoteError(.other, "cannot create a private folder under \(base): \(String(cString: strerror(errno))) (set TMPDIR to a folder you can write)")
        }
        return String(cString: made)
    }

    /// Creates `path` 0700, or checks that the one there is a folder of this user's that nobody else can write.
    static func ensure(_ path: String) throws(RemoteError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw RemoteError(.other, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { throw RemoteError(.other, "cannot read \(path): \(String(cString: strerror(errno)))") }
        let mode = String(st.st_mode & 0o777, radix: 8)
        if st.st_mode & S_IFMT == S_IFLNK {
            throw RemoteError(.other, "\(path) is a symbolic link, not a folder: remove it (lrtop keeps its SSH sockets there)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw RemoteError(.other, "\(path) is not a folder: remove it (lrtop keeps its SSH sockets there)")
        }
        guard st.st_uid == getuid() else {
            throw RemoteError(.other, "\(path) belongs to uid \(st.st_uid), not you (mode \(mode)): remove it, or set XDG_RUNTIME_DIR to a folder of yours")
        }
        guard st.st_mode & 0o022 == 0 else {
            throw RemoteError(.other, "\(path) is writable by others (mode \(mode)): chmod 700 \(path)")
        }
    }

    /// Removes a folder this process made and everything in it (no link is followed).
    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
