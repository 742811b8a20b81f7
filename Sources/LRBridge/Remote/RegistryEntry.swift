import Foundation

/// One entry of the run registry (docs/registry.md): a live process that serves an lrtop socket, as the file
/// `<host>-<pid>-<8 hex>.json` under `${XDG_STATE_HOME:-~/.local/state}/lrtop/runs/` says. Read from files another
/// process wrote (on a shared home, another machine): every field's type and length is checked, and an entry
/// without the fields a viewer needs reads as nil.
public struct RegistryEntry: Equatable, Sendable {
    public struct Slurm: Equatable, Sendable {
        public var jobID: String
        public var procID: Int?
        public var node: String?
        public init(jobID: String, procID: Int? = nil, node: String? = nil) {
            self.jobID = jobID; self.procID = procID; self.node = node
        }
    }

    public var host: String
    public var pid: Int
    public var socket: String
    public var log: String?
    public var runDir: String?
    public var name: String?
    /// "lrtop", "plain", "lightning" or "hf".
    public var kind: String?
    public var worldSize: Int?
    public var rank: Int?
    public var start: String?
    /// Unix seconds of the last refresh.
    public var heartbeat: Double?
    public var slurm: Slurm?

    /// The entry in `bytes`, nil when it is not one (too large, not JSON, a required field missing or mistyped).
    public static func parse(_ bytes: [UInt8]) -> RegistryEntry? {
        guard bytes.count <= RemoteSurvey.maxEntryBytes, let w = try? JSONDecoder().decode(Wire.self, from: Data(bytes)),
              w.registry == 1, let host = w.host, let pid = w.pid, pid > 0, let socket = w.socket, socket.hasPrefix("/")
        else { return nil }
        var entry = RegistryEntry(host: RemoteSurvey.shortName(host), pid: pid, socket: socket)
        entry.log = w.log; entry.runDir = w.runDir; entry.name = w.name; entry.kind = w.kind
        entry.worldSize = w.worldSize; entry.rank = w.rank; entry.start = w.start
        if let beat = w.heartbeat, beat.isFinite { entry.heartbeat = beat }
        if let job = w.slurm?.jobID { entry.slurm = Slurm(jobID: job, procID: w.slurm?.procID, node: w.slurm?.node) }
        return entry
    }

    /// The entry as its file holds it (docs/registry.md): what `parse` reads back. Written by `lrtop train`'s
    /// registry writer; the field names live here once, for writer and reader.
    public func encoded() -> [UInt8] {
        var o: [String: Any] = ["registry": 1, "host": host, "pid": pid, "socket": socket]
        if let log { o["log"] = log }
        if let runDir { o["run_dir"] = runDir }
        if let name { o["name"] = name }
        if let kind { o["kind"] = kind }
        if let worldSize { o["world_size"] = worldSize }
        if let rank { o["rank"] = rank }
        if let start { o["start"] = start }
        if let heartbeat, heartbeat.isFinite { o["heartbeat"] = heartbeat }
        if let slurm {
            var s: [String: Any] = ["job_id": slurm.jobID]
            if let p = slurm.procID { s["proc_id"] = p }
            if let n = slurm.node { s["node"] = n }
            o["slurm"] = s
        }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    public init(host: String, pid: Int, socket: String) { self.host = host; self.pid = pid; self.socket = socket }

    /// The entry's fields; one of the wrong type, or a string that is too long or holds control characters (it is
    /// shown on a terminal), reads as missing.
    private struct Wire: Decodable {
        var registry, pid, worldSize, rank: Int?
        var host, socket, log, runDir, name, kind, start: String?
        var heartbeat: Double?
        var slurm: SlurmWire?

        struct SlurmWire: Decodable {
            var jobID, node: String?
            var procID: Int?
            enum CodingKeys: String, CodingKey { case jobID = "job_id", procID = "proc_id", node }
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                jobID = Wire.text(c, .jobID); node = Wire.text(c, .node)
                procID = (try? c.decodeIfPresent(Int.self, forKey: .procID)) ?? nil
            }
        }

        enum CodingKeys: String, CodingKey {
            case registry, pid, host, socket, log, name, kind, start, heartbeat, slurm, rank
            case worldSize = "world_size", runDir = "run_dir"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func int(_ k: CodingKeys) -> Int? { (try? c.decodeIfPresent(Int.self, forKey: k)) ?? nil }
            registry = int(.registry); pid = int(.pid); worldSize = int(.worldSize); rank = int(.rank)
            host = Self.text(c, .host); socket = Self.text(c, .socket); log = Self.text(c, .log)
            runDir = Self.text(c, .runDir); name = Self.text(c, .name); kind = Self.text(c, .kind)
            start = Self.text(c, .start)
            heartbeat = (try? c.decodeIfPresent(Double.self, forKey: .heartbeat)) ?? nil
            slurm = (try? c.decodeIfPresent(SlurmWire.self, forKey: .slurm)) ?? nil
        }

        static func text<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) -> String? {
            guard let s = (try? c.decodeIfPresent(String.self, forKey: key)) ?? nil, !s.isEmpty,
                  s.utf8.count <= RemoteSurvey.maxField,
                  !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return nil }
            return s
        }
    }
}
