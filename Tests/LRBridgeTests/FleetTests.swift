import Foundation
import Glibc
import Testing
@testable import LRBridge
import LRTUI

/// The registry reader and the fleet over real Unix sockets: servers that speak the protocol on their own threads,
/// real registry files and socket folders in a temporary place.
@Suite(.serialized)
struct FleetTests {
    static let me = LocalRegistry.hostname()

    /// A temporary state folder (registry inside) and runtime folder (socket folder inside), private as writers
    /// make them.
    struct World {
        let dir: TempFolder
        var registry: String { dir.file("state/lrtop/runs") }
        var sockets: String { dir.file("rt/lrtop-\(geteuid())") }
        init() throws {
            dir = try TempFolder()
            for folder in [dir.file("state/lrtop/runs"), dir.file("rt/lrtop-\(geteuid())")] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            }
        }
        var options: Fleet.Options {
            var o = Fleet.Options()
            o.registryFolder = registry
            o.socketBases = [dir.file("rt")]
            o.host = FleetTests.me
            return o
        }
        func register(_ json: String, as name: String) throws {
            try json.write(toFile: registry + "/" + name, atomically: true, encoding: .utf8)
            chmod(registry + "/" + name, 0o600)
        }
    }

    static func entry(host: String = me, pid: Int32 = getpid(), socket: String, name: String, log: String,
                      heartbeat: Double? = nil, world: Int = 1, rank: Int = 0) -> String {
        let beat = heartbeat ?? Date().timeIntervalSince1970
        return #"{"registry":1,"host":"\#(host)","pid":\#(pid),"socket":"\#(socket)","log":"\#(log)","run_dir":"\#((log as NSString).deletingLastPathComponent)","name":"\#(name)","kind":"plain","world_size":\#(world),"rank":\#(rank),"start":"2026-12-07T03:00:00Z","heartbeat":\#(beat)}"#
    }

    @Test func theRegistryReaderSkipsWhatItCannotTrustAndRemovesEntriesOfDeadProcesses() throws {
        let world = try World()
        defer { world.dir.remove() }
        let live = try FakeBridgeServer(path: world.dir.file("live.sock"))
        defer { live.stop() }
        try world.register(Self.entry(socket: live.path, name: "alive", log: "/abs/alive/run.jsonl"), as: "\(Self.me)-\(getpid())-0a1b2c3d.json")
        // Its process is gone: removed by the reader.
        try world.register(Self.entry(pid: 999_999, socket: world.dir.file("dead.sock"), name: "dead", log: "/abs/dead/run.jsonl"),
                           as: "\(Self.me)-999999-11111111.json")
        // Another node's (a shared home): listed for others to reach, not checked against this machine's processes.
        try world.register(Self.entry(host: "gpu9", pid: 77, socket: "/run/user/1/lrtop-1/77-aa.sock", name: "far", log: "/abs/far/run.jsonl"),
                           as: "gpu9-77-22222222.json")
        // Stale heartbeat, not JSON, too large, a link: skipped.
        try world.register(Self.entry(host: "gpu8", pid: 78, socket: "/x.sock", name: "stale", log: "/abs/stale/run.jsonl",
                                      heartbeat: Date().timeIntervalSince1970 - 600), as: "gpu8-78-33333333.json")
        try world.register("{not json", as: "\(Self.me)-1-44444444.json")
        try world.register(String(repeating: " ", count: 17_000) + Self.entry(socket: live.path, name: "big", log: "/b"), as: "gpu7-5-55555555.json")
        symlink(world.registry + "/gpu9-77-22222222.json", world.registry + "/gpu6-9-66666666.json")

        let listing = LocalRegistry.read(folder: world.registry, host: Self.me)
        #expect(listing.refused == nil)
        #expect(listing.entries.map { $0.name ?? "" }.sorted() == ["alive", "far"])
        #expect(listing.removed == 1)
        #expect(!FileManager.default.fileExists(atPath: world.registry + "/\(Self.me)-999999-11111111.json"))
        #expect(listing.skipped == 5)

        let look = LocalDiscovery.look(registryFolder: world.registry, host: Self.me, socketBases: [world.dir.file("rt")])
        #expect(look.runs.map(\.socket) == [live.path])
        #expect(look.otherHosts.map(\.host) == ["gpu9"])
    }

    @Test func aRegistryFolderThatIsALinkOrWritableByOthersIsRefusedInOneLine() throws {
        let world = try World()
        defer { world.dir.remove() }
        chmod(world.registry, 0o777)
        let open = LocalRegistry.read(folder: world.registry, host: Self.me)
        #expect(open.entries.isEmpty)
        #expect(open.refused == "\(world.registry): the run registry is writable by others (mode 777); not read (chmod 700 it)")
        chmod(world.registry, 0o700)
        let link = world.dir.file("linked")
        symlink(world.registry, link)
        #expect(LocalRegistry.read(folder: link, host: Self.me).refused?.contains("is a symbolic link; not read") == true)
        #expect(LocalRegistry.read(folder: world.dir.file("none"), host: Self.me).refused == nil)
    }

    @Test func theFleetFollowsEveryRunAnswersCommandsPerRowAndKeepsEndedRunsWithTheirReason() throws {
        let world = try World()
        defer { world.dir.remove() }
        // A run of an older package: only its socket, in the socket folder.
        let old = try FakeBridgeServer(path: world.sockets + "/\(getpid())-0a0a0a0a.sock", reply: { id, text in
            [#"{"type":"ack","id":\#(id),"ok":true}"#,
             #"{"type":"result","id":\#(id),"ok":true,"step":13,"message":"\#(text): lr 0.001 -> 0.0005"}"#]
        })
        defer { old.stop() }
        // A registered run, whose log ends with an end record once it has finished.
        let log = world.dir.file("runs/reg/run.jsonl")
        try writeRunLog(log, socket: world.dir.file("reg.sock"), steps: 3)
        let registered = try FakeBridgeServer(path: world.dir.file("reg.sock"), logPath: log, reply: { id, _ in
            [#"{"type":"ack","id":\#(id),"ok":false,"error":"unknown command 'frobnicate'"}"#]
        })
        try world.register(Self.entry(socket: registered.path, name: "fake-run", log: log), as: "\(Self.me)-\(getpid())-0b0b0b0b.json")

        let fleet = Fleet(options: world.options)
        fleet.start()
        defer { fleet.close() }
        fleet.settle(timeout: 5)
        var rows = fleet.snapshot()
        #expect(Set(rows.map(\.socket)) == [old.path, registered.path])
        #expect(rows.allSatisfy { $0.connection == .live && $0.status?.step == 12 && $0.status?.totalSteps == 200 })
        let oldID = FleetRowID(host: Self.me, socket: old.path), regID = FleetRowID(host: Self.me, socket: registered.path)

        // Protocol E figures reach the row.
        old.send(#"{"type":"status","state":"running","step":14,"lr":[0.0005],"loss":0.5,"loss_trend":[1.0,0.7,0.5],"steps_per_s":12.5,"eta_s":30,"step_age":0.1,"step_time":0.08,"val_loss":null}"#)
        #expect(eventually { fleet.snapshot().first { $0.id == oldID }?.status?.figures.loss == 0.5 })
        let figures = fleet.snapshot().first { $0.id == oldID }!.status!.figures
        #expect(figures.lossTrend == [1.0, 0.7, 0.5] && figures.stepsPerSecond == 12.5 && figures.etaSeconds == 30)
        #expect(figures.stepTime == 0.08 && figures.valLoss == nil)

        // One command to both: each row gets its own answer.
        fleet.send("lr *0.5", to: [oldID, regID])
        fleet.send("frobnicate", to: [regID])
        #expect(eventually {
            let r = fleet.snapshot()
            return r.first { $0.id == oldID }?.answer?.ok == true && r.first { $0.id == regID }?.answer?.ok == false
        })
        rows = fleet.snapshot()
        if case .answered(let reply)? = rows.first(where: { $0.id == oldID })?.answer {
            #expect(reply.outcome == .applied && reply.message == "lr 0.001 -> 0.0005" && reply.step == 13)
        } else { Issue.record("no answer for the old run") }
        if case .answered(let reply)? = rows.first(where: { $0.id == regID })?.answer {
            #expect(reply.outcome == .rejected("unknown command 'frobnicate'") && reply.text == "frobnicate")
        } else { Issue.record("no answer for the registered run") }

        // The registered run finishes: its row stays, ended, with the reason from its log's end record.
        try appendLine(log, #"{"type":"end","reason":"completed","step":3,"epoch":0}"#)
        registered.stop()
        #expect(eventually { fleet.snapshot().first { $0.id == regID }?.connection == .ended("completed") })
        #expect(fleet.snapshot().last?.id == regID, "ended rows come after live ones")
        fleet.send("pause", to: [regID])
        #expect(eventually { fleet.snapshot().first { $0.id == regID }?.answer == .notSent(text: "pause", reason: "the run has ended (completed)") })

        // A new run appears within about a second.
        let started = Date()
        let new = try FakeBridgeServer(path: world.sockets + "/\(getpid())-0c0c0c0c.sock")
        defer { new.stop() }
        #expect(eventually(timeout: 3) { fleet.snapshot().contains { $0.socket == new.path && $0.status != nil } })
        #expect(Date().timeIntervalSince(started) < 2.5)
    }

    @Test func theRanksOfADDPJobAreOneRowAndEachRankAnswersAStacksRequest() throws {
        let world = try World()
        defer { world.dir.remove() }
        let log = world.dir.file("runs/ddp/run.jsonl")
        try writeRunLog(log, socket: world.dir.file("r0.sock"))
        func hello(_ rank: Int) -> String {
            #"{"type":"hello","protocol":\#(BridgeProtocol.version),"run":"ddp","log":"LOG","pid":\#(getpid()),"framework":"plain","world_size":2,"rank":\#(rank),"host":"\#(Self.me)"}"#
        }
        func stacks(_ rank: Int) -> @Sendable (Int) -> String {
            { id in #"{"type":"stacks","id":\#(id),"rank":\#(rank),"threads":[{"name":"MainThread","ident":1,"main":true,"frames":[{"file":"/x/train.py","line":42,"function":"load","code":"time.sleep(5)"}]},{"name":"lrtop-socket","ident":2,"main":false,"frames":[]}]}"# }
        }
        let rank0 = try FakeBridgeServer(path: world.dir.file("r0.sock"), logPath: log, hello: hello(0), stacks: stacks(0))
        defer { rank0.stop() }
        let rank1 = try FakeBridgeServer(path: world.dir.file("r1.sock"), logPath: log, hello: hello(1), stacks: stacks(1))
        defer { rank1.stop() }
        try world.register(Self.entry(socket: rank0.path, name: "ddp", log: log, world: 2, rank: 0), as: "\(Self.me)-\(getpid())-0d0d0d0d.json")
        try world.register(Self.entry(socket: rank1.path, name: "ddp", log: log, world: 2, rank: 1), as: "\(Self.me)-\(getpid())-0e0e0e0e.json")

        let fleet = Fleet(options: world.options)
        fleet.start()
        defer { fleet.close() }
        fleet.settle(timeout: 5)
        let rows = fleet.snapshot()
        #expect(rows.count == 1)
        #expect(rows.first?.socket == rank0.path && rows.first?.ranks.map(\.socket) == [rank1.path])
        #expect(rows.first?.ranks.first?.rank == 1 && rows.first?.worldSize == 2)
        guard let job = rows.first else { return }

        fleet.stacks(of: job.id)
        #expect(eventually { if case .ready? = fleet.snapshot().first?.stacks { return true } else { return false } })
        guard case .ready(let ranks)? = fleet.snapshot().first?.stacks else { return }
        #expect(ranks.map(\.rank) == [0, 1])
        #expect(ranks.allSatisfy { $0.error == nil && $0.threads.count == 2 })
        #expect(ranks[1].threads[0].frames == [ThreadStack.Frame(file: "/x/train.py", line: 42, function: "load", code: "time.sleep(5)")])
        #expect(ranks[1].threads[0].main && ranks[1].threads[0].name == "MainThread")
    }
}
