import Foundation
import Glibc

/// This machine's run registry (docs/registry.md): the folder of entries live serving processes keep fresh, read
/// by viewers. Reading also cleans: an entry of this host whose process is gone, or whose socket is gone while its
/// heartbeat is stale, is removed, as every registry reader does. Files written by other processes (on a shared
/// home, other machines) are not trusted: no links, regular files only, at most 16 KiB, each field checked.
public enum LocalRegistry {
    /// What one read of the folder found.
    public struct Listing: Equatable, Sendable {
        public var folder: String
        /// Valid entries with a fresh heartbeat, of any host (a shared home holds every node's), oldest file first.
        public var entries: [RegistryEntry] = []
        /// Entries passed over: stale, malformed, too large, not regular files, processes gone.
        public var skipped = 0
        /// Entries deleted because their process is gone.
        public var removed = 0
        /// Why the folder was not read (a link, another user's, writable by others), in one line; nil when it was
        /// read or does not exist.
        public var refused: String?
    }

    /// `${XDG_STATE_HOME:-$HOME/.local/state}/lrtop/runs` (XDG_STATE_HOME only when absolute, as the spec says).
    public static func folder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let state = environment["XDG_STATE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? ((environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()) + "/.local/state")
        return state + "/lrtop/runs"
    }

    /// This machine's name up to the first dot, as writers name their entries.
    public static func hostname() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard buffer.withUnsafeMutableBytes({ gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), 255) }) == 0
        else { return "localhost" }
        return RemoteSurvey.shortName(String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self))
    }

    /// The folder's modification time, to re-read it only when an entry was written, renamed or removed; nil when
    /// it does not exist.
    public static func stamp(of folder: String) -> timespec? {
        var st = stat()
        guard lstat(folder, &st) == 0 else { return nil }
        return st.st_mtim
    }

    /// The problem with `folder` as a registry, or nil when it may be read (or does not exist: no runs yet).
    public static func problem(with folder: String) -> String? {
        var st = stat()
        guard lstat(folder, &st) == 0 else {
            return errno == ENOENT ? nil : "\(folder): cannot read the run registry: \(String(cString: strerror(errno)))"
        }
        if st.st_mode & S_IFMT == S_IFLNK {
            return "\(folder): the run registry is a symbolic link; not read (remove the link: lrtop recreates the folder)"
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { return "\(folder): the run registry is not a folder; not read (remove it)" }
        if st.st_uid != geteuid() {
            return "\(folder): the run registry belongs to user \(st.st_uid), not you; not read (remove it, or set XDG_STATE_HOME)"
        }
        if st.st_mode & 0o022 != 0 {
            return "\(folder): the run registry is writable by others (mode \(String(st.st_mode & 0o777, radix: 8))); not read (chmod 700 it)"
        }
        return nil
    }

    /// Reads every entry. `now`: Unix seconds; `host`: this machine's short name (entries of this host are checked
    /// against its processes and sockets).
    public static func read(folder: String = folder(), host: String = hostname(),
                            now: Double = Date().timeIntervalSince1970) -> Listing {
        var listing = Listing(folder: folder)
        if let why = problem(with: folder) { listing.refused = why; return listing }
        guard let dir = opendir(folder) else { return listing }
        defer { closedir(dir) }
        var names: [String] = []
        while let item = readdir(dir) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".json"), !name.hasPrefix(".") { names.append(name) }
        }
        for name in names.sorted() {
            let path = folder + "/" + name
            guard let bytes = readEntryFile(path), let entry = RegistryEntry.parse(bytes) else { listing.skipped += 1; continue }
            let stale = entry.heartbeat.map { now - $0 > RemoteSurvey.staleAfter } ?? false
            if entry.host == host {
                let processGone = kill(pid_t(clamping: entry.pid), 0) != 0 && errno == ESRCH
                var st = stat()
                let socketGone = lstat(entry.socket, &st) != 0 && errno == ENOENT
                if processGone || (socketGone && stale) {
                    if unlink(path) == 0 { listing.removed += 1 }
                    listing.skipped += 1
                    continue
                }
                // Alive but its socket is gone: nothing to connect to (a process that closed its server).
                if socketGone { listing.skipped += 1; continue }
            }
            if stale { listing.skipped += 1; continue }
            listing.entries.append(entry)
        }
        return listing
    }

    /// A regular file's bytes, read without following a link, or nil (a link, not regular, over 16 KiB).
    static func readEntryFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size <= RemoteSurvey.maxEntryBytes else { return nil }
        var bytes = [UInt8](repeating: 0, count: RemoteSurvey.maxEntryBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            count += n
        }
        guard count <= RemoteSurvey.maxEntryBytes else { return nil }
        return Array(bytes.prefix(count))
    }
}
