import Foundation
import Synchronization
import LRLog

public enum RunDirectory {
    /// `./runs/2026-11-25_14-03-22` (a suffix is added if that exists, so two runs started in the same second
    /// never share a folder).
    public static func makeDefault(base: URL = URL(fileURLWithPath: "runs"), prefix: String = "") throws -> URL {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        let stem = prefix + f.string(from: Date())
        var url = base.appendingPathComponent(stem)
        var n = 2
        while FileManager.default.fileExists(atPath: url.path) {
            url = base.appendingPathComponent("\(stem)-\(n)")
            n += 1
        }
        return url
    }
}

/// SIGINT/SIGTERM arrive here; the trainer checks at each step boundary and ends the run cleanly (log flushed,
/// end record written, final checkpoint saved).
public enum SignalFlag {
    private static let signal = Atomic<Int32>(0)
    public static var received: Bool { signal.load(ordering: .relaxed) != 0 }
    public static var name: String {
        switch signal.load(ordering: .relaxed) { case SIGINT: "SIGINT (Ctrl-C)"; case SIGTERM: "SIGTERM"; case SIGHUP: "SIGHUP (terminal closed)"; default: "a signal" }
    }
    /// The signal received (0: none).
    public static var number: Int32 { signal.load(ordering: .relaxed) }
    public static func raise(_ sig: Int32) { signal.store(sig, ordering: .relaxed) }
    public static func reset() { signal.store(0, ordering: .relaxed) }

    /// Installs handlers that only record the signal (async-signal-safe); the loops that care check `received`.
    public static func install() {
        Foundation.signal(SIGINT) { SignalFlag.raise($0) }
        Foundation.signal(SIGTERM) { SignalFlag.raise($0) }
        // A closed terminal (ssh dropped) ends the run as SIGTERM does: log closed, end record, final checkpoint.
        Foundation.signal(SIGHUP) { SignalFlag.raise($0) }
        // A parent that started us with these signals blocked (Foundation's Process passes its thread's mask on,
        // so do some process managers) would make them wait forever: unblock them for this thread and the
        // threads it starts.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, s) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }
}

extension RunDirectory {
    /// Makes the run's folder ready for a run and says whether the log continues (a resume into the folder whose
    /// log holds the run). Nothing that exists is overwritten without `force`: a folder holding another run's log
    /// or checkpoints is refused, naming what is there and what to do. The folder and `checkpoints/` must be the
    /// user's own and writable by nobody else, and the log no link (`SafeFiles`): another user's folder, or a link
    /// planted where the log or a checkpoint goes, is refused before anything is written or removed. Stale
    /// checkpoint temporaries of writers that are gone (a `kill -9` mid-write) are removed.
    public static func prepare(_ dir: URL, log: URL, resuming: Bool, force: Bool) throws(TrainError) -> Bool {
        let instead = "choose another --run-dir"
        do throws(LogError) {
            try SafeFiles.refuseLink(log.path, what: "the run log")
            if let kind = FileProblem.nonRegularKind(log.path) {
                throw LogError("the log \(log.path) is \(kind), not a regular file: give a file path")
            }
            try SafeFiles.prepareFolder(dir, what: "the run folder", instead: instead)
            if log.deletingLastPathComponent().standardizedFileURL != dir.standardizedFileURL {
                try SafeFiles.prepareFolder(log.deletingLastPathComponent(), what: "the log's folder",
                                            instead: "choose another --log", sharedAllowed: true)
            }
        } catch { throw TrainError(error.message) }
        guard access(dir.path, W_OK) == 0 else {
            throw TrainError("cannot write into the run folder \(dir.path): \(String(cString: strerror(errno)))")
        }
        let checkpoints = dir.appendingPathComponent("checkpoints")
        if FileManager.default.fileExists(atPath: checkpoints.path) || isLink(checkpoints.path) {
            do { try SafeFiles.checkFolder(checkpoints.path, what: "the checkpoints folder", instead: instead) } catch {
                throw TrainError(error.message)
            }
        }
        removeStaleTemporaries(in: checkpoints)
        let logSize = FileManager.default.fileExists(atPath: log.path) ? FileProblem.size(log.path) ?? 0 : 0
        let oldCheckpoints = checkpointFiles(in: checkpoints)
        if resuming { return logSize > 0 }
        guard logSize > 0 || !oldCheckpoints.isEmpty else { return false }
        guard force else {
            let what = logSize > 0 ? "\(log.path) already holds a run log (\(logSize) bytes)"
                : "\(checkpoints.path) already holds \(oldCheckpoints.count) checkpoint(s)"
            throw TrainError("\(what); nothing was overwritten: continue that run with --resume CKPT (it appends), "
                + "choose another --run-dir or --log, or pass --force to overwrite it")
        }
        for url in oldCheckpoints { unlink(url.path) }
        return false
    }

    private static func isLink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK
    }

    static func checkpointFiles(in folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".ckpt") && !$0.hasPrefix(".") }.map { folder.appendingPathComponent($0) }
    }

    /// Removes `.NAME.tmp-PID` files whose writer (process PID) no longer runs.
    static func removeStaleTemporaries(in folder: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where name.hasPrefix(".") {
            guard let range = name.range(of: ".tmp-", options: .backwards),
                  let pid = Int32(name[range.upperBound...]) else { continue }
            if pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM) { continue }
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}

extension RunDirectory {
    /// The complete lines of the log at `url` (0 when it cannot be read): where a continued log's new lines start.
    static func lineCount(of url: URL) -> Int {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return 0 }
        defer { try? handle.close() }
        var count = 0
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            count += chunk.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        }
        return count
    }
}
