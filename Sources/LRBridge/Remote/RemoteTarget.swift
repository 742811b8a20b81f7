import Foundation

/// What a person named after `lrtop attach`, `replay` or `ls` when the run is on another host: `HOST:SPEC` (SPEC a
/// run's name, its folder or log, its socket, a pid, or nothing: the newest live run there) or `slurm:JOBID`.
public enum RemoteTarget: Equatable, Sendable {
    case host(String, spec: String)
    case slurm(job: String)

    /// Reads an argument; nil when it names something on this machine (no `HOST:` in front, or a local path that
    /// exists, colon included).
    public static func parse(_ argument: String, existsHere: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) })
        -> RemoteTarget? {
        if argument.hasPrefix("slurm:") {
            return .slurm(job: String(argument.dropFirst(6)))
        }
        guard !argument.hasPrefix("/"), !argument.hasPrefix("."), !existsHere(argument) else { return nil }
        // `[::1]:runs/a`: an address in brackets; otherwise the host is what comes before the first colon.
        if argument.hasPrefix("["), let close = argument.firstIndex(of: "]"),
           argument[argument.index(after: close)...].hasPrefix(":") {
            let host = String(argument[argument.index(after: argument.startIndex)..<close])
            return .host(host, spec: String(argument[argument.index(close, offsetBy: 2)...]))
        }
        guard let colon = argument.firstIndex(of: ":") else { return nil }
        let host = String(argument[..<colon])
        guard !host.isEmpty, !host.contains("/") else { return nil }
        return .host(host, spec: String(argument[argument.index(after: colon)...]))
    }

    /// A Slurm job id as squeue takes it: `123`, an array task `123_4`, a het component `123+1`.
    public static func validJob(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 32 && id.first!.isNumber && id.allSatisfy { $0.isNumber || $0 == "_" || $0 == "+" }
    }
}

/// Which run of a host's survey a spec names, or why none can be attached.
public enum RemoteChoice: Equatable, Sendable {
    case run(RemoteSurvey.Run)
    /// A socket named by path that the survey did not see as a run (its log comes from the run's greeting).
    case socket(String)
    /// Several live runs match: the person picks (the runs table comes with `lrtop runs`).
    case several([RemoteSurvey.Run])

    /// `host` is the host as the person typed it, for messages and the commands they suggest.
    public static func choose(spec: String, in survey: RemoteSurvey, host: String) throws(RemoteError) -> RemoteChoice {
        let live = survey.runs
        let looked = ([survey.registry] + survey.folders).filter { !$0.isEmpty }.joined(separator: ", ")
        func replay(_ dir: String) -> String { "lrtop replay \(host):\(dir)" }
        switch survey.target {
        case .socket(let path):
            if let run = live.first(where: { $0.socket == path }) { return .run(run) }
            return .socket(path)
        case .logs:
            let steerable = survey.logs.compactMap { log in live.first { $0.socket == log.socket }.map { ($0, log) } }
            if steerable.count == 1 { return .run(steerable[0].0) }
            if steerable.count > 1 { return .several(steerable.map(\.0)) }
            guard let log = survey.logs.sorted(by: { ($0.start ?? "") > ($1.start ?? "") }).first else {
                throw RemoteError(.noRun, "\(host):\(spec): no run.jsonl there, and no runs under it")
            }
            if !log.isRunLog {
                throw RemoteError(.noRun, "\(host):\(log.path): not an lrtop run log (its first line is not a header record)")
            }
            let which = survey.logs.count > 1 ? "no live run under \(host):\(spec): the newest, \(log.name)," : "the run \(host):\(log.runDir)"
            if let reason = log.endReason {
                throw RemoteError(.noRun, "\(which) has ended (\(reason)), so there is nothing to steer: replay it with '\(replay(log.runDir))'")
            }
            if log.socket == nil {
                throw RemoteError(.noRun, "\(host):\(log.path): its header names no socket, so the run cannot be steered (was it written by lrtop.attach?); replay it with '\(replay(log.runDir))'")
            }
            throw RemoteError(.noRun, "\(which) is not running (its socket is gone and its log has no end record: the process exited or was killed); what it logged replays with '\(replay(log.runDir))'")
        case .none, .missing:
            break
        }
        if spec.isEmpty {
            guard !live.isEmpty else {
                throw RemoteError(.noRun, "no live run on \(host) (looked in \(looked)): start one there with lrtop.attach(optimizer, ...), or name its folder: lrtop attach \(host):RUN_DIR")
            }
            return live.count == 1 ? .run(live[0]) : .several(live)
        }
        let matches = live.filter { $0.name == spec || String($0.pid) == spec || ($0.runDir.map { ($0 as NSString).lastPathComponent } == spec) }
        if matches.count == 1 { return .run(matches[0]) }
        if matches.count > 1 { return .several(matches) }
        if case .missing(let path) = survey.target, spec.contains("/") {
            throw RemoteError(.noRun, "\(host):\(path): no such file or folder there")
        }
        let others = live.isEmpty ? "no live runs there" : "live there: " + live.map(\.name).joined(separator: ", ")
        throw RemoteError(.noRun, "no live run named '\(spec)' on \(host) (\(others)); an ended run replays with '\(replay("RUN_DIR"))'")
    }
}
