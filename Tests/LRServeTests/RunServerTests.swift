import Foundation
import Glibc
import Testing
import LRBridge
import LRLog
@testable import LRServe

/// The server against hostile and slow clients, with a service that only echoes (the trainer is not needed).
@Suite(.serialized) struct RunServerTests {
    final class Echo: RunService, @unchecked Sendable {
        func hello() -> [UInt8] { Array("{\"type\":\"hello\",\"protocol\":1,\"log\":\"/x\"}\n".utf8) }
        func status() -> [UInt8] { Array("{\"type\":\"status\",\"state\":\"running\",\"step\":1}\n".utf8) }
        func command(text: String, id: [UInt8]?, client: Int) -> [UInt8] { ServedRun.ack(id, error: nil) }
        func stacks(id: [UInt8]?) -> [UInt8] { Array("{\"type\":\"stacks\"}\n".utf8) }
        func tick() -> (answers: [(client: Int, line: [UInt8])], statusDue: Bool) { ([], false) }
    }

    /// A private socket folder for the test, removed after (the process's environment is left alone: every test
    /// of the package runs in this process).
    func withServer(records: LogLineRing? = nil, _ body: (RunServer) throws -> Void) throws {
        let folder = NSTemporaryDirectory() + "lrs-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        mkdir(folder, 0o700)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try RunServer(records: records, folder: folder + "/lrtop", warn: { _ in })
        server.start(Echo())
        defer { server.close() }
        var st = stat()
        #expect(lstat(server.path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        try body(server)
    }

    func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return fd
    }

    /// Everything the server sends within `seconds`, and whether it closed the connection.
    func read(_ fd: Int32, seconds: Double) -> (text: String, closed: Bool) {
        var data: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return (String(decoding: data, as: UTF8.self), true) }
            data += chunk[..<n]
        }
        return (String(decoding: data, as: UTF8.self), false)
    }

    func send(_ fd: Int32, _ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

    @Test func malformedLinesAreRefusedOneByOneAndTheConnectionStays() throws {
        try withServer { server in
            let fd = connect(server.path)
            defer { close(fd) }
            send(fd, "nonsense\n[1,2]\n{\"type\":\"launch\"}\n{\"type\":\"command\",\"id\":true,\"text\":\"pause\"}\n{\"type\":\"command\",\"id\":3}\n{\"type\":\"command\",\"id\":4,\"text\":\"pause\"}\n")
            let (text, closed) = read(fd, seconds: 1)
            #expect(!closed)
            let lines = text.split(separator: "\n")
            #expect(lines.first?.contains("\"hello\"") == true)
            #expect(lines.filter { $0.contains("\"type\":\"error\"") }.count == 5, "\(text)")
            #expect(text.contains("not JSON") && text.contains("not a JSON object") && text.contains("unknown message type \\\"launch\\\""))
            #expect(text.contains("{\"type\":\"ack\",\"id\":4,\"ok\":true}"))
        }
    }

    @Test func aLineOverTheLimitClosesThatConnectionOnly() throws {
        try withServer { server in
            let bad = connect(server.path), good = connect(server.path)
            defer { close(bad); close(good) }
            send(bad, String(repeating: "x", count: RunServer.maxLine + 10))
            let (text, closed) = read(bad, seconds: 2)
            #expect(closed && text.contains("over the 65536-byte limit"))
            send(good, "{\"type\":\"status\"}\n")
            #expect(read(good, seconds: 0.7).text.contains("\"status\""))
        }
    }

    @Test func aViewerThatDoesNotReadIsDroppedAndPushesDoNotWaitForIt() throws {
        let ring = LogLineRing(capacity: 64)
        try withServer(records: ring) { server in
            let fd = connect(server.path)
            defer { close(fd) }
            var size: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            send(fd, "{\"type\":\"subscribe\",\"from_line\":0}\n")
            // Lines pushed far faster than it reads: the server never blocks, and drops it past 1 MiB queued.
            let line = Array("{\"type\":\"step\",\"pad\":\"\(String(repeating: "y", count: 4000))\"}".utf8)
            let start = Date()
            for _ in 0..<2000 { ring.append(line[...]) }
            #expect(Date().timeIntervalSince(start) < 1, "appending never waits for the socket")
            Thread.sleep(forTimeInterval: 1.5)
            let (text, _) = read(fd, seconds: 1)
            #expect(text.contains("\"type\":\"gap\""), "lines no longer held are announced as a gap")
        }
    }

    @Test func theRegistryEntryIsReadBackByTheReaderAndRemovedAtTheEnd() throws {
        let home = NSTemporaryDirectory() + "lrs-reg-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: home) }
        var entry = RegistryEntry(host: "gpu7", pid: Int(getpid()), socket: "/tmp/x.sock")
        entry.kind = "lrtop"; entry.name = "n"; entry.worldSize = 1; entry.rank = 0; entry.log = "/r/run.jsonl"
        let writer = try #require(RegistryWriter(entry: entry, environment: ["XDG_STATE_HOME": home], warn: { _ in }))
        var st = stat()
        #expect(lstat(home + "/lrtop/runs", &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(lstat(writer.path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let read = try #require(RegistryEntry.parse(Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))))
        #expect(read.host == "gpu7" && read.kind == "lrtop" && read.name == "n" && read.rank == 0 && read.log == "/r/run.jsonl")
        #expect(read.heartbeat != nil)
        writer.remove()
        #expect(access(writer.path, F_OK) != 0)
    }
}
