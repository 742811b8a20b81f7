import Foundation
import Testing
import LRBridge

/// Issue #20 items 11, 18 and 19 on the attach side: every number a peer sends is untrusted, and runs whose
/// process is gone are skipped (their stale sockets removed when they are ours) with a sentence saying so.
@Suite(.serialized)
struct HostilePeerTests {
    @Test func aStatusWithCountsOutOfRangeIsRefusedAndTheNextOneShown() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let log = dir.file("run.jsonl")
        try writeRunLog(log, socket: "x")
        let server = try FakeBridgeServer(logPath: log)
        defer { server.stop() }
        let connection = try BridgeConnection(path: server.path)
        _ = try connection.waitForGreeting()
        let source = AttachSource(connection: connection, logURL: URL(fileURLWithPath: log), pollInterval: 0)
        var shown: [String] = []
        func pump() {
            _ = source.drain()
            shown += source.takeWarnings()
        }
        #expect(eventually { pump(); return source.status().step == 12 })
        for (step, epoch, total) in [("\(Int.min)", "0", "200"), ("5", "0", "\(Int.min)"), ("5", "-1", "200"), ("\(Int.max)", "0", "200")] {
            server.send(#"{"type":"status","state":"running","step":\#(step),"epoch":\#(epoch),"total_steps":\#(total),"lr":[0.001]}"#)
        }
        server.send(#"{"type":"status","state":"running","step":40,"epoch":0,"total_steps":300,"lr":[0.001,0.002],"groups":["body","head"]}"#)
        #expect(eventually { pump(); return source.status().step == 40 })
        let s = source.status()
        #expect(s.totalSteps == 300)
        let refused = shown.filter { $0.contains("a count from 0 to 2^53 is expected") }
        #expect(refused.count == 4, "\(shown)")
        #expect(refused.first == "malformed message from the run: status message with \"step\" = \(Int.min): a count from 0 to 2^53 is expected; line ignored")
    }

    @Test func aStaleSocketOfADeadProcessIsSkippedRemovedAndNamed() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        // The bridge's private socket folder, holding the socket a killed run left: named after its dead PID.
        let sockets = dir.file("lrtop-\(geteuid())")
        try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stalePath = sockets + "/\(dead)-0badc0de.sock"
        try makeStaleSocket(at: stalePath)
        try writeRunLog(dir.file("runs/killed/run.jsonl"), socket: stalePath)

        let found = RunFinder.runs(under: URL(fileURLWithPath: dir.file("runs")))
        let message = RunFinder.noLiveRun(found, under: "runs").description
        #expect(message == "no live run under runs: the newest, killed, is not running: its process exited without an end record "
                + "(killed or crashed), so nobody listens on its socket \(stalePath) (the stale socket was removed); "
                + "replay what it logged with 'lrtop replay \(dir.file("runs/killed/run.jsonl"))'")
        #expect(!FileManager.default.fileExists(atPath: stalePath))

        // With a live run beside it, the stale one is skipped and named.
        try makeStaleSocket(at: stalePath)
        let server = try FakeBridgeServer()
        defer { server.stop() }
        try writeRunLog(dir.file("runs/live/run.jsonl"), socket: server.path)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)],
                                              ofItemAtPath: dir.file("runs/live/run.jsonl"))
        let target = try RunFinder.target(for: dir.file("runs"))
        #expect(target.socket == server.path)
        #expect(target.skipped == "skipped 1 run whose process is gone (no end record, nobody listens on the socket): killed; their stale sockets were removed")
        #expect(!FileManager.default.fileExists(atPath: stalePath))
    }

    @Test func aStaleSocketThatIsNotOursIsLeftWhereItIs() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        // A folder others can write is not a private socket folder: the file is left alone.
        let shared = dir.file("shared")
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        chmod(shared, 0o777)
        let path = shared + "/1-0badc0de.sock"
        try makeStaleSocket(at: path)
        #expect(RunFinder.socketState(path) == .stale(removed: false))
        #expect(FileManager.default.fileExists(atPath: path))
    }

    /// Binds a socket at `path` and closes it without unlinking: what a `kill -9` of a bridged run leaves.
    func makeStaleSocket(at path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(fd)
        guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
    }
}
