import Foundation
import Glibc

/// `lrtop attach HOST:RUN` and `lrtop attach slurm:JOBID` up to the dashboard: the master connection, the run chosen
/// from the host's survey, its socket reached and proved by a greeting, its log copied as it grows. What the
/// dashboard then needs: a connection and its transport, and the local copy of the log.
public struct RemoteAttach {
    public let host: String
    public let run: RemoteSurvey.Run?
    public let connection: ConnectedSocket
    public let transport: SSHTransport
    /// The local copy of the run's log (a private folder, removed at exit).
    public let localLog: URL
    /// Where the run's log and folder are on the host.
    public let remoteLog: String
    public var remoteRunDir: String { (remoteLog as NSString).deletingLastPathComponent }

    /// Says what it is doing (`progress`), asks the person when several runs match (`pick`), and gives up when
    /// `cancelled` says so (a signal). Every failure is one line.
    public static func open(_ target: RemoteTarget, via: Via = .auto, progress: (String) -> Void,
                            pick: ([RemoteSurvey.Run], String) throws(RemoteError) -> RemoteSurvey.Run,
                            cancelled: @escaping @Sendable () -> Bool) throws(RemoteError) -> RemoteAttach {
        let host: String
        var survey: RemoteSurvey
        let master: SSHMaster
        var choice: RemoteChoice
        switch target {
        case .host(let h, let spec):
            host = h
            master = try SSHMaster(host: host)
            progress("connecting to \(host) ...")
            try master.connect(cancelled: cancelled)
            survey = try RemoteSurvey.of(master, spec: spec, cancelled: cancelled)
            choice = try RemoteChoice.choose(spec: spec, in: survey, host: host)
        case .slurm(let id):
            let job = try Slurm.job(id)
            host = try rank0Node(of: job)
            progress("job \(id) (\(job.name), \(job.partition)): rank 0 on \(host); connecting ...")
            master = try SSHMaster(host: host)
            try master.connect(cancelled: cancelled)
            survey = try RemoteSurvey.of(master, cancelled: cancelled)
            let ofJob = survey.runs.filter { $0.slurmJob == id }
            let rank0 = ofJob.filter { ($0.rank ?? 0) == 0 }
            guard !ofJob.isEmpty else {
                let others = survey.runs.isEmpty ? "" : " (live there, of other jobs: " + survey.runs.map(\.name).joined(separator: ", ") + ")"
                throw RemoteError(.noRun, "job \(id) runs on \(host), but no lrtop run of it is live there\(others): is it still starting (its script must call lrtop.attach), or has its run ended?")
            }
            choice = rank0.count == 1 ? .run(rank0[0]) : .several(rank0.isEmpty ? ofJob : rank0)
        }
        if case .several(let runs) = choice { choice = .run(try pick(runs, host)) }

        let socket: String
        let run: RemoteSurvey.Run?
        switch choice {
        case .run(let r): socket = r.socket; run = r
        case .socket(let s): socket = s; run = nil
        case .several: preconditionFailure("picked above")
        }
        let pid = run?.pid ?? Int((socket as NSString).lastPathComponent.prefix { $0.isNumber })
        let connector = RemoteConnector(master: master, socket: socket, pid: pid)
        progress("reaching \(run?.name ?? socket) on \(host) ...")
        let (connected, route, forward, relay) = try connector.open(via, cancelled: cancelled)
        guard let remoteLog = run?.log ?? greetingLog(connected.received) else {
            throw RemoteError(.other, "\(host):\(socket): the run's greeting names no log")
        }
        let folder = try PrivateFolder.temporary()
        RemoteCleanup.shared.add { PrivateFolder.remove(folder) }
        let runFolder = try RemoteFetch.makeFolder(folder, name: ((remoteLog as NSString).deletingLastPathComponent as NSString).lastPathComponent)
        let localLog = runFolder + "/run.jsonl"
        let transport = try SSHTransport(connector: connector, route: route, forward: forward, relay: relay,
                                         remoteLog: remoteLog, localLog: localLog)
        return RemoteAttach(host: host, run: run, connection: connected, transport: transport,
                            localLog: URL(fileURLWithPath: localLog), remoteLog: remoteLog)
    }

    /// The node of a job's rank 0: from the run registry (a shared home holds every node's entries), else the first
    /// node of its allocation (where Slurm starts a batch script, and rank 0 of a typical launch).
    public static func rank0Node(of job: Slurm.Job) throws(RemoteError) -> String {
        if let entries = try? RemoteSurvey.local().entries,
           let entry = entries.first(where: { $0.slurm?.jobID == job.id && ($0.rank ?? $0.slurm?.procID ?? 0) == 0 }) {
            return entry.slurm?.node ?? entry.host
        }
        guard let first = try Slurm.hostnames(job.nodes).first else {
            throw RemoteError(.slurm, "job \(job.id) has no nodes yet (\(job.nodes))")
        }
        return first
    }

    /// The log named by the run's greeting (a run given by its socket).
    static func greetingLog(_ received: [UInt8]) -> String? {
        guard let nl = received.firstIndex(of: UInt8(ascii: "\n")),
              case .hello(let h)? = try? ServerMessage.parse(received[..<nl]), h.log.hasPrefix("/") else { return nil }
        return h.log
    }
}
