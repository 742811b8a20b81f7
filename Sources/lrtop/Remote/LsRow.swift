import Foundation
import LRBridge
import LRLog
import LRTUI

/// One line of `lrtop ls`: a run of this machine (its fleet row: status from its socket) or of another host (what
/// the survey read from its registry entry and log), as table cells or one JSON object.
struct LsRow {
    var host: String
    var name: String
    var pid: Int
    var kind: String?
    var state: String?
    var step: Int?
    var totalSteps: Int?
    var lrs: [Double] = []
    var loss: Double?
    var stepsPerSecond: Double?
    var etaSeconds: Double?
    var log: String?
    var socket: String
    var rank: Int?
    var worldSize: Int?
    var slurm: RegistryEntry.Slurm?
    /// When it was last heard of: "live", or a log's age.
    var updated: String

    init(row: FleetRow) {
        host = row.host; name = row.name; pid = row.pid; kind = row.kind; socket = row.socket; log = row.log
        rank = row.rank; worldSize = row.worldSize; slurm = row.slurm
        switch row.connection {
        case .live, .connecting: state = row.status?.state ?? (row.connection == .live ? "greeted" : "connecting")
        case .ended(let why): state = "ended: \(why)"
        case .unreachable(let why): state = "unreachable: \(why)"
        }
        if let s = row.status {
            step = s.step; totalSteps = s.totalSteps; lrs = s.lrs
            loss = s.figures.loss; stepsPerSecond = s.figures.stepsPerSecond; etaSeconds = s.figures.etaSeconds
        }
        updated = row.statusAt.map { Format.duration(max(0, Date().timeIntervalSince($0))) + " ago" } ?? "-"
    }

    init(host: String, run: RemoteSurvey.Run, now: Double) {
        self.host = host; name = run.name; pid = run.pid; kind = run.kind; socket = run.socket; log = run.log
        rank = run.rank; worldSize = run.worldSize; step = run.step; loss = run.loss
        slurm = run.slurmJob.map { RegistryEntry.Slurm(jobID: $0, procID: nil, node: nil) }
        updated = Ls.age(run.modified, now: now)
    }

    static let header = ["HOST", "RUN", "PID", "KIND", "STATE", "STEP", "LR", "LOSS", "STEPS/S", "ETA", "UPDATED", "SLURM", "LOG"]

    var cells: [String] {
        let stepText = step.map { s in Format.grouped(s) + (totalSteps.map { "/" + Format.grouped($0) } ?? "") } ?? "-"
        let named = rank.map { r in (worldSize ?? 0) > 1 ? "\(name) [rank \(r)]" : name } ?? name
        return [host, named, String(pid), kind ?? "-", state ?? "-", stepText,
                lrs.isEmpty ? "-" : lrs.map(Format.lr).joined(separator: ","), loss.map(Ls.number) ?? "-",
                stepsPerSecond.map { String(format: "%.2f", $0) } ?? "-", etaSeconds.map(Format.duration) ?? "-",
                updated, slurm?.jobID ?? "-", log ?? socket]
    }

    /// The spec's fields (#25 §5), null when unknown; rank, world_size and slurm only when known.
    func json() -> String {
        var o: [String: Any] = [
            "name": name, "pid": pid, "host": host, "kind": kind ?? NSNull(), "state": state ?? NSNull(),
            "step": step ?? NSNull(), "total_steps": totalSteps ?? NSNull(),
            "lrs": lrs.map { $0.isFinite ? $0 as Any : NSNull() }, "loss": Self.finite(loss),
            "steps_per_s": Self.finite(stepsPerSecond), "eta_s": Self.finite(etaSeconds),
            "log": log ?? NSNull(), "socket": socket,
        ]
        if let rank { o["rank"] = rank }
        if let worldSize { o["world_size"] = worldSize }
        if let slurm {
            var s: [String: Any] = ["job_id": slurm.jobID]
            if let p = slurm.procID { s["proc_id"] = p }
            if let n = slurm.node { s["node"] = n }
            o["slurm"] = s
        }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func finite(_ x: Double?) -> Any { x.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
}
