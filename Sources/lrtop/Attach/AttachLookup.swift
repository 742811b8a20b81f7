import Foundation
import LRBridge
import LRTUI

/// `lrtop attach NAME|PID` from any folder, and `lrtop attach` with no argument outside a folder of runs: the
/// runs this machine serves (the fleet: registry entries and socket folders, each asked over its socket), matched
/// by name, pid, run folder or log.
enum AttachLookup {
    /// The live runs of this machine as the fleet sees them once every one has greeted (at most two seconds).
    static func liveRuns() -> (rows: [FleetRow], looked: String) {
        let fleet = Fleet()
        fleet.start()
        fleet.settle(timeout: 2)
        let rows = fleet.snapshot().filter { $0.connection.isLive }
        let looked = fleet.lastLook?.whereLooked ?? "looked in the registry \(LocalRegistry.folder())"
        fleet.close()
        return (rows, looked)
    }

    /// The run `argument` names (a name or a pid); errors say what was found instead and how to pick.
    static func target(named argument: String, runsFolder: String) throws(BridgeError) -> RunFinder.Target {
        let (rows, looked) = liveRuns()
        let pid = Int(argument)
        let matches = rows.filter { row in
            row.name == argument || pid == row.pid || row.ranks.contains { pid == $0.pid }
        }
        if matches.count == 1, let row = matches.first { return target(row) }
        if matches.count > 1 {
            let list = matches.map { "  \(describe($0))" }.joined(separator: "\n")
            throw BridgeError("\(matches.count) live runs are named \(argument):\n\(list)\npick one by its PID (lrtop attach PID) or its run folder")
        }
        // Not live: a run of that name under the runs folder that has ended says so, with how to replay it.
        let log = URL(fileURLWithPath: runsFolder).appendingPathComponent(argument).appendingPathComponent(RunFinder.logName)
        if FileManager.default.fileExists(atPath: log.path) {
            if let reason = RunFinder.endReason(of: log) {
                throw BridgeError("the run \(argument) has ended (\(reason)), so there is nothing to steer: replay it with 'lrtop replay \(log.path)'")
            }
            return try RunFinder.target(forLog: log)
        }
        let names = rows.map(\.name)
        let known = names.isEmpty ? "no live runs on this machine" : "live runs: " + names.joined(separator: ", ")
        throw BridgeError("\(argument): no live run of that name or pid, and no such file or folder (\(known); \(looked)); list them with 'lrtop ls', or give a run folder, its run.jsonl, or its socket")
    }

    static func target(_ row: FleetRow) -> RunFinder.Target {
        RunFinder.Target(socket: row.socket, log: row.log.map { URL(fileURLWithPath: $0) })
    }

    /// "NAME  pid P  KIND  step S  RUN_DIR" for a pick list.
    static func describe(_ row: FleetRow) -> String {
        var parts = [row.name, "pid \(row.pid)"]
        if let k = row.kind { parts.append(k) }
        if let w = row.worldSize, w > 1 { parts.append("\(w) ranks") }
        if let s = row.status { parts.append("step \(Format.grouped(s.step))") }
        parts.append(row.runDir ?? row.log ?? row.socket)
        return parts.joined(separator: "  ")
    }
}
