import Foundation
import Glibc
import LRLog

/// Finds the socket of a run from what a person types after `lrtop attach`: the socket itself, a run folder, its
/// run.jsonl, or nothing (the runs under ./runs).
public enum RunFinder {
    /// A run log written by the Python package, with the socket its header names.
    public struct Run: Equatable, Sendable {
        public var log: URL
        /// Nil when the header names none (a log written by lrtop's own trainer, or an older package).
        public var socket: String?
        public var modified: Date
        /// The reason from its end record, when the run has ended.
        public var endReason: String?

        /// The folder's name, or the log's when it is not called run.jsonl.
        public var name: String {
            log.lastPathComponent == "run.jsonl" ? log.deletingLastPathComponent().lastPathComponent : log.lastPathComponent
        }
    }

    /// Where to connect, and the log when the argument named it.
    public struct Target: Equatable, Sendable {
        public var socket: String
        public var log: URL?
        /// Runs passed over on the way (their processes are gone), for a line saying so.
        public var skipped: String?
        public init(socket: String, log: URL?, skipped: String? = nil) {
            self.socket = socket; self.log = log; self.skipped = skipped
        }
    }

    /// What a run's socket says about its process.
    public enum SocketState: Equatable, Sendable {
        case listening
        /// Nobody listens: the process that made it exited without removing it (a crash, a `kill -9`).
        /// `removed`: it was this user's, in a private socket folder, its process is gone, and it was deleted.
        case stale(removed: Bool)
        /// It could not be reached for another reason (named).
        case unreachable(String)
    }

    public static let logName = "run.jsonl"

    /// Resolves one argument. Errors say what the argument is and what to give instead.
    public static func target(for argument: String) throws(BridgeError) -> Target {
        var st = stat()
        guard stat(argument, &st) == 0 else {
            if errno != ENOENT, let problem = FileProblem.statProblem(argument, what: "run") {
                throw BridgeError(problem.message)
            }
            throw BridgeError("\(argument): no such file or folder (give a run folder, its \(logName), or the socket the run printed)")
        }
        switch st.st_mode & S_IFMT {
        case S_IFSOCK:
            return Target(socket: argument, log: nil)
        case S_IFDIR:
            let dir = URL(fileURLWithPath: argument)
            let log = dir.appendingPathComponent(logName)
            if FileManager.default.fileExists(atPath: log.path) { return try target(forLog: log) }
            let inside = runs(under: dir)
            if !inside.isEmpty { return try newestLive(inside, under: argument) }
            throw BridgeError("\(argument): no \(logName) in this folder, and no runs under it")
        default:
            return try target(forLog: URL(fileURLWithPath: argument))
        }
    }

    /// The socket a log's header names.
    public static func target(forLog log: URL) throws(BridgeError) -> Target {
        guard let header = firstLine(of: log) else {
            throw BridgeError("\(log.path): empty so far (no header yet); wait for the run to start, or give its socket")
        }
        guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              object["type"] as? String == "header" else {
            throw BridgeError("\(log.path): not an lrtop run log (its first line is not a header record)")
        }
        guard let socket = object["socket"] as? String, !socket.isEmpty else {
            throw BridgeError("\(log.path): its header names no socket, so the run cannot be steered (was it written by lrtop.attach?); follow it read-only with 'lrtop watch \(log.path)'")
        }
        return Target(socket: socket, log: log)
    }

    /// The run logs under `dir` (`dir/*/run.jsonl`) that name a socket, newest first.
    public static func runs(under dir: URL) -> [Run] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var found: [Run] = []
        for name in names {
            let log = dir.appendingPathComponent(name).appendingPathComponent(logName)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: log.path),
                  let line = firstLine(of: log),
                  let header = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                  header["type"] as? String == "header" else { continue }
            found.append(Run(log: log, socket: header["socket"] as? String,
                             modified: attributes[.modificationDate] as? Date ?? .distantPast,
                             endReason: endReason(of: log)))
        }
        return found.filter { $0.socket != nil }.sorted { $0.modified > $1.modified }
    }

    /// Runs whose socket accepts a connection now.
    public static func live(_ runs: [Run]) -> [Run] {
        probe(runs).filter { $0.state == .listening }.map(\.run)
    }

    /// Each run that has not ended, with what its socket says (stale ones of dead processes are removed when
    /// they are this user's), newest first.
    public static func probe(_ runs: [Run]) -> [(run: Run, state: SocketState)] {
        runs.compactMap { run in
            guard run.endReason == nil, let socket = run.socket else { return nil }
            return (run, socketState(socket))
        }
    }

    /// Connects once to see whether a process listens on `path`.
    public static func socketState(_ path: String) -> SocketState {
        do {
            let s = try UnixSocket(connectingTo: path, timeoutMs: 200)
            s.close()
            return .listening
        } catch {
            guard error.code == ECONNREFUSED else { return .unreachable(error.description) }
            return .stale(removed: removeIfStale(path))
        }
    }

    /// Deletes a socket nobody listens on when it is safe to: the socket is this user's, in a folder only this
    /// user can write (the bridge's `lrtop-UID` folder), and named `PID-….sock` after a process that is gone.
    public static func removeIfStale(_ path: String) -> Bool {
        var st = stat(), dir = stat()
        let folder = (path as NSString).deletingLastPathComponent
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK, st.st_uid == geteuid(),
              stat(folder.isEmpty ? "." : folder, &dir) == 0, dir.st_uid == geteuid(), dir.st_mode & 0o022 == 0,
              let pid = Int32((path as NSString).lastPathComponent.prefix { $0.isNumber }), pid > 0,
              kill(pid, 0) != 0 && errno == ESRCH else { return false }
        return unlink(path) == 0
    }

    static func newestLive(_ runs: [Run], under dir: String) throws(BridgeError) -> Target {
        let probed = probe(runs)
        guard let run = probed.first(where: { $0.state == .listening })?.run else { throw noLiveRun(runs, under: dir, probed: probed) }
        return Target(socket: run.socket!, log: run.log, skipped: skippedNote(probed))
    }

    /// One line naming the runs passed over because their processes are gone, or nil.
    public static func skippedNote(_ probed: [(run: Run, state: SocketState)]) -> String? {
        let stale = probed.filter { if case .stale = $0.state { return true } else { return false } }
        guard !stale.isEmpty else { return nil }
        let removed = stale.contains { $0.state == .stale(removed: true) }
        return "skipped \(stale.count) run\(stale.count == 1 ? "" : "s") whose process is gone (no end record, nobody "
            + "listens on the socket): \(stale.map(\.run.name).joined(separator: ", "))"
            + (removed ? "; their stale sockets were removed" : "")
    }

    /// The error for a folder of runs none of which can be attached to.
    public static func noLiveRun(_ runs: [Run], under dir: String,
                                 probed: [(run: Run, state: SocketState)]? = nil) -> BridgeError {
        guard let newest = runs.first else {
            return BridgeError("no runs under \(dir) to attach to: start one with lrtop.attach(optimizer, ...) in your PyTorch script (see 'lrtop attach --help'), or give its folder or socket")
        }
        var state: String, replay = "replay it with"
        if let reason = newest.endReason {
            state = "has ended (\(reason))"
        } else {
            switch (probed ?? probe([newest])).first(where: { $0.run == newest })?.state {
            case .stale(let removed)?:
                replay = "replay what it logged with"
                state = "is not running: its process exited without an end record (killed or crashed), so nobody "
                    + "listens on its socket \(newest.socket ?? "")" + (removed ? " (the stale socket was removed)" : "")
            case .unreachable(let why)?:
                state = "cannot be reached (\(why))"
            case .listening?, nil:
                state = "stopped listening just now"
            }
        }
        return BridgeError("no live run under \(dir): the newest, \(newest.name), \(state); \(replay) 'lrtop replay \(newest.log.path)'")
    }

    /// The reason in a log's end record, if its last line is one.
    public static func endReason(of log: URL) -> String? {
        guard let handle = try? FileHandle(forReadingFrom: log) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return nil }
        let start = size > 65_536 ? size - 65_536 : 0
        try? handle.seek(toOffset: start)
        guard let tail = try? handle.readToEnd() else { return nil }
        let lines = tail.split(separator: UInt8(ascii: "\n"))
        guard let last = lines.last,
              let object = try? JSONSerialization.jsonObject(with: Data(last)) as? [String: Any],
              object["type"] as? String == "end" else { return nil }
        return object["reason"] as? String ?? "ended"
    }

    /// The first line of a file (without its newline), or nil when there is none yet.
    static func firstLine(of url: URL) -> Data? {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        var data = Data()
        while data.count < 4 << 20 {
            guard let chunk = try? handle.read(upToCount: 65_536), !chunk.isEmpty else { return nil }
            if let nl = chunk.firstIndex(of: UInt8(ascii: "\n")) {
                data.append(chunk[chunk.startIndex..<nl])
                return data
            }
            data.append(chunk)
        }
        return nil
    }
}
