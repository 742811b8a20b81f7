import Foundation
import Glibc

/// The runs this machine serves sockets for: the registry's entries of this host, plus the sockets in the bridge's
/// socket folders whose process is alive (runs of packages older than the registry), one per socket path.
public enum LocalDiscovery {
    /// One run found, before anything was said over its socket.
    public struct Found: Equatable, Sendable {
        public var socket: String
        public var pid: Int
        /// Its registry entry; nil for a socket found only in a socket folder.
        public var entry: RegistryEntry?
    }

    /// What one look found, and where it looked (for the "no live runs" line).
    public struct Result: Equatable, Sendable {
        public var runs: [Found] = []
        public var registry: LocalRegistry.Listing
        public var socketFolders: [String] = []
        /// Registry entries of other hosts (a shared home): reached over SSH, not from here.
        public var otherHosts: [RegistryEntry] = []

        /// "the registry FOLDER and the socket folders A, B": where a person can look too.
        public var whereLooked: String {
            let folders = socketFolders.isEmpty ? "no socket folder of yours exists" : "socket folders " + socketFolders.joined(separator: ", ")
            return "looked in the registry \(registry.folder) and \(folders)"
        }
    }

    public static func look(registryFolder: String = LocalRegistry.folder(), host: String = LocalRegistry.hostname(),
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            socketBases: [String]? = nil) -> Result {
        var result = Result(registry: LocalRegistry.read(folder: registryFolder, host: host))
        var seen = Set<String>()
        for entry in result.registry.entries {
            guard entry.host == host else { result.otherHosts.append(entry); continue }
            if seen.insert(entry.socket).inserted { result.runs.append(Found(socket: entry.socket, pid: entry.pid, entry: entry)) }
        }
        result.socketFolders = socketFolders(bases: socketBases ?? defaultBases(environment))
        for folder in result.socketFolders {
            for (socket, pid) in liveSockets(in: folder) where seen.insert(socket).inserted {
                result.runs.append(Found(socket: socket, pid: pid, entry: nil))
            }
        }
        return result
    }

    /// The bridge's socket folders of this user that exist: `lrtop-UID` (and the private fallbacks `lrtop-UID-*` a
    /// squatted folder leads to) under $XDG_RUNTIME_DIR, /run/user/UID, $TMPDIR and /tmp; links and folders of
    /// others are passed over.
    public static func socketFolders(bases: [String]) -> [String] {
        let uid = geteuid()
        var found: [String] = []
        for base in bases {
            let prefix = "lrtop-\(uid)"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            for name in names.sorted() where name == prefix || name.hasPrefix(prefix + "-") {
                let path = (base as NSString).appendingPathComponent(name)
                var st = stat()
                guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == uid,
                      !found.contains(path) else { continue }
                found.append(path)
            }
        }
        return found
    }

    /// Where the bridge (python/lrtop/server.py) and lrtop's trainer make their socket folders.
    public static func defaultBases(_ environment: [String: String]) -> [String] {
        [environment["XDG_RUNTIME_DIR"] ?? "", "/run/user/\(geteuid())", environment["TMPDIR"] ?? "/tmp", "/tmp"]
            .filter { $0.hasPrefix("/") }
    }

    /// The sockets `PID-*.sock` in `folder` whose process is alive.
    static func liveSockets(in folder: String) -> [(String, Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.sorted().compactMap { name in
            guard name.hasSuffix(".sock"), let pid = Int32(name.prefix { $0.isNumber }), pid > 0 else { return nil }
            let path = folder + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK else { return nil }
            guard kill(pid, 0) == 0 || errno == EPERM else { return nil }
            return (path, Int(pid))
        }
    }
}
