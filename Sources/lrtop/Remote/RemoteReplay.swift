import ArgumentParser
import Foundation
import LRBridge
import LRLog

/// `lrtop replay HOST:RUN_DIR`: each remote run is copied over its host's master connection into a private folder
/// (removed at exit), and replayed from there like any local run.
enum RemoteReplay {
    /// The arguments, the remote ones replaced by their local copies. Fails in one line when one cannot be copied.
    static func localize(_ runs: [String]) throws -> [String] {
        guard runs.contains(where: { RemoteTarget.parse($0) != nil }) else { return runs }
        Interrupts.install()
        var masters: [String: SSHMaster] = [:]
        defer { for m in masters.values { m.close(exitIfLast: true) } }
        do {
            let folder = try PrivateFolder.temporary()
            RemoteCleanup.shared.add { PrivateFolder.remove(folder) }
            return try runs.map { (argument: String) throws(RemoteError) -> String in
                switch RemoteTarget.parse(argument) {
                case nil:
                    return argument
                case .slurm?:
                    throw RemoteError(.other, "\(argument): replay takes HOST:RUN_DIR (find a job's node and run with 'lrtop ls --slurm')")
                case .host(let host, let spec)?:
                    guard !spec.isEmpty else {
                        throw RemoteError(.other, "\(argument): name the run's folder or log there (HOST:RUN_DIR); 'lrtop ls \(host)' lists the live ones")
                    }
                    let master: SSHMaster
                    if let m = masters[host] { master = m } else {
                        master = try SSHMaster(host: host)
                        masters[host] = master
                        printErr("lrtop: connecting to \(host) ...")
                        try master.connect(cancelled: { Interrupts.pending != 0 })
                    }
                    return try RemoteFetch.fetch(spec, from: master, into: folder, cancelled: { Interrupts.pending != 0 })
                }
            }
        } catch {
            for m in masters.values { m.close(exitIfLast: true) }
            masters = [:]
            RemoteCleanup.shared.runAll()
            if case .interrupted = error.kind { throw ExitCode(128 + Interrupts.pending) }
            try fail(error.description)
        }
    }
}
