import ArgumentParser
import Foundation
import Glibc
import LRBridge
import LRLog
import LRTUI

extension Via: ExpressibleByArgument {}

extension Attach {
    /// `lrtop attach HOST:RUN` / `slurm:JOBID`: connect (saying so), then the same dashboard as a local attach.
    func attachRemote(_ target: RemoteTarget, look: (Theme, String?)) throws {
        Interrupts.install()
        let opened: RemoteAttach
        do {
            opened = try RemoteAttach.open(target, via: via, progress: { printErr("lrtop: " + $0) },
                                           pick: Self.pick, cancelled: { Interrupts.pending != 0 })
        } catch {
            RemoteCleanup.shared.runAll()
            if case .interrupted = error.kind { throw ExitCode(128 + Interrupts.pending) }
            try fail(error.description)
        }
        let source = Self.makeSource(BridgeConnection(adopting: opened.connection), opened.localLog)
        source.transport = opened.transport
        defer { RemoteCleanup.shared.runAll() }  // the master and the forward go, however this ends
        if headless { return try follow(source) }
        let where_ = opened.host + ":" + opened.remoteRunDir
        try steer(source, look: look, log: opened.host + ":" + opened.remoteLog, replay: where_, again: where_)
    }

    /// Several live runs match: the person picks one by number (Enter: the newest).
    static func pick(_ runs: [RemoteSurvey.Run], host: String) throws(RemoteError) -> RemoteSurvey.Run {
        printOut("\(runs.count) live runs on \(host), newest first:")
        for (i, run) in runs.enumerated() {
            let job = run.slurmJob.map { " · slurm job \($0)" } ?? ""
            printOut("  \(i + 1)  \(run.name)  (pid \(run.pid)\(job)\(run.step.map { " · step \(Format.grouped($0))" } ?? ""))")
        }
        while true {
            printOut("attach to which? [1] ", terminator: "")
            flushStdout()
            // Waits in slices, so a signal (taken by whichever thread) ends the wait too.
            var ready = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            while poll(&ready, 1, 100) == 0 || (ready.revents & Int16(POLLIN | POLLHUP | POLLERR)) == 0 {
                if Interrupts.pending != 0 { throw RemoteError(.interrupted(Interrupts.pending), "interrupted") }
            }
            if Interrupts.pending != 0 { throw RemoteError(.interrupted(Interrupts.pending), "interrupted") }
            guard let line = readLine() else { throw RemoteError(.noRun, "no run chosen") }
            let answer = line.trimmingCharacters(in: .whitespaces)
            if answer.isEmpty { return runs[0] }
            if let n = Int(answer), runs.indices.contains(n - 1) { return runs[n - 1] }
            if answer == "q" { throw RemoteError(.noRun, "no run chosen") }
            printOut("type a number from 1 to \(runs.count), Enter for the newest, or q")
        }
    }
}
