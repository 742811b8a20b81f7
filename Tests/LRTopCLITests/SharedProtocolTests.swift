import Foundation
import Glibc
import Testing

/// One protocol script (docs/bridge.md) run against both servers: a PyTorch loop bridged by the Python package and a
/// headless `lrtop train`. Whatever a viewer (`lrtop attach`, `ls`, `runs`) relies on must read the same from both.
@Suite(.serialized)
struct SharedProtocolTests {
    /// A bridged PyTorch loop that runs until it is killed (about 30 steps a second).
    static let pythonLoop = """
    import time, torch, lrtop
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with lrtop.attach(opt, model=model, name="shared", log_dir="runs", total_steps=100000, announce=False) as run:
        for step in range(100000):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            run.step(loss=loss)
            time.sleep(0.03)
    """

    @Test(.enabled(if: venvPython != nil, "no Python venv"))
    func aBridgedPyTorchLoopAnswersTheProtocolScript() throws {
        let dir = try TempDir("lrtop-shared-py")
        defer { dir.cleanup() }
        let loop = try startPythonScript(Self.pythonLoop, in: dir)
        defer { if loop.isRunning { kill(loop.processIdentifier, SIGKILL) }; loop.waitUntilExit() }
        let socket = try #require(Self.socketInHeader(of: dir.path("runs/shared/run.jsonl")), "the loop wrote no header")
        try Self.runScript(on: socket, framework: "plain")
    }

    @Test func aHeadlessLrtopTrainAnswersTheProtocolScript() throws {
        let dir = try TempDir("lrtop-shared-swift")
        defer { dir.cleanup() }
        // A constant schedule: under the default one, `lr 0.005` in its warmup would be refused (docs/steering.md).
        let run = try HeadlessRun(dir, steps: 3000, extra: ["--scheduler", "constant"])
        defer { run.stop() }
        let socket = try #require(Self.socketInHeader(of: dir.path("r/run.jsonl")), "the run wrote no header")
        try Self.runScript(on: socket, framework: "lrtop")
    }

    /// The script: greeting, status with its fields, a malformed line refused, a command acknowledged and applied
    /// at a step boundary with its result, records pushed from line 0, the stacks of the training thread.
    static func runScript(on socket: String, framework: String) throws {
        let peer = try ProtocolPeer(socket)
        let hello = try #require(try peer.next { $0["type"] as? String == "hello" })
        #expect(hello["protocol"] as? Int == 1)
        #expect((hello["log"] as? String)?.hasSuffix("run.jsonl") == true)
        #expect(hello["pid"] as? Int != nil)
        #expect(hello["framework"] as? String == framework)
        #expect(hello["records"] as? Bool == true)
        /// Protocol E's part of the script (#25: both servers send it).
        func protocolEFields(_ check: () throws -> Void) rethrows { try check() }
        protocolEFields {
            #expect(hello["rank"] as? Int == 0)
            #expect((hello["host"] as? String)?.isEmpty == false)
        }

        // A status once the run stepped: the version-1 fields and protocol E's.
        var status = try #require(try peer.next(timeout: 30) { $0["type"] as? String == "status" && ($0["step"] as? Int ?? 0) >= 5 })
        #expect(status["state"] as? String == "running")
        #expect((status["lr"] as? [Double])?.count == 1)
        #expect(status["groups"] as? [String] != nil)
        protocolEFields {
            for key in ["loss", "loss_trend", "val_loss", "val_acc", "steps_per_s", "samples_per_s", "eta_s", "step_age",
                        "step_time", "ended", "rank"] {
                #expect(status.keys.contains(key) || ["val_loss", "val_acc", "ended", "samples_per_s"].contains(key), "status lacks \(key)")
            }
            #expect(status["loss"] as? Double != nil)
            #expect(((status["loss_trend"] as? [Double])?.count ?? 0) >= 2)
            #expect((status["step_time"] as? Double ?? 0) > 0)
            #expect(status["step_age"] as? Double != nil)
            #expect((status["steps_per_s"] as? Double ?? 0) > 0)
        }

        // A malformed line: refused, the connection stays.
        try peer.send(Array("this is not json\n".utf8))
        let refusal = try #require(try peer.next { $0["type"] as? String == "error" })
        #expect((refusal["error"] as? String)?.contains("not JSON") == true)

        // A command: acknowledged, applied at a step boundary, answered with its typed result.
        let sentAt = status["step"] as? Int ?? 0
        try peer.send(Array("{\"type\":\"command\",\"id\":41,\"text\":\"lr 0.005\"}\n".utf8))
        let ack = try #require(try peer.next { $0["type"] as? String == "ack" })
        #expect(ack["id"] as? Int == 41 && ack["ok"] as? Bool == true)
        let result = try #require(try peer.next(timeout: 30) { $0["type"] as? String == "result" })
        #expect(result["id"] as? Int == 41 && result["ok"] as? Bool == true, "\(result)")
        #expect((result["step"] as? Int ?? -1) >= sentAt)
        #expect(result["lrs_after"] as? [Double] == [0.005])
        #expect((result["command"] as? [String: Any])?["verb"] as? String == "lr")
        status = try #require(try peer.next(timeout: 10) { $0["type"] as? String == "status" })
        #expect(status["lr"] as? [Double] == [0.005])

        // A command that does not parse: refused in its ack.
        try peer.send(Array("{\"type\":\"command\",\"id\":42,\"text\":\"lr banana\"}\n".utf8))
        let refused = try #require(try peer.next { $0["type"] as? String == "ack" })
        #expect(refused["id"] as? Int == 42 && refused["ok"] as? Bool == false && refused["error"] as? String != nil)

        // Records from line 0: the header first, then steps.
        try peer.send(Array("{\"type\":\"subscribe\",\"from_line\":0}\n".utf8))
        let first = try #require(try peer.next { $0["type"] as? String == "record" })
        #expect(first["line"] as? Int == 0)
        #expect((first["record"] as? [String: Any])?["type"] as? String == "header")
        let step = try #require(try peer.next { ($0["record"] as? [String: Any])?["type"] as? String == "step" })
        #expect((step["line"] as? Int ?? 0) > 0)

        // Stacks: answered by the server's thread, the training thread marked as the main one (spec #25 §3, new
        // with protocol E).
        try protocolEFields {
            try peer.send(Array("{\"type\":\"stacks\",\"id\":9}\n".utf8))
            let stacks = try #require(try peer.next { $0["type"] as? String == "stacks" })
            #expect(stacks["id"] as? Int == 9)
            let threads = stacks["threads"] as? [[String: Any]] ?? []
            let main = try #require(threads.first { $0["main"] as? Bool == true }, "no main thread in \(threads)")
            #expect(main["frames"] as? [Any] != nil)
            if framework == "lrtop" {
                #expect((main["phase"] as? String)?.contains("step") == true, "\(main)")
            } else {
                #expect(!(main["frames"] as? [Any] ?? []).isEmpty)
            }
        }
    }

    static func socketInHeader(of log: String, timeout: TimeInterval = 120) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let header = (try? readLog(log))?.first, let socket = header["socket"] as? String { return socket }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }
}

/// `lrtop train --headless` on a small synthetic set at 20 steps a second, in `dir/r`, with a private registry.
final class HeadlessRun {
    let process = Process()
    let registry: String

    init(_ dir: TempDir, steps: Int, extra: [String] = []) throws {
        registry = dir.path("state/lrtop/runs")
        process.executableURL = lrtopBinary
        process.arguments = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "16", "--batch-size", "64",
                             "--pace", "20/s", "--epochs", "100", "--max-steps", "\(steps)", "--run-dir", "r"] + extra
        process.currentDirectoryURL = dir.url
        var env = ProcessInfo.processInfo.environment
        env["XDG_STATE_HOME"] = dir.path("state")
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A viewer's end of the protocol, blocking with timeouts (the test's thread only).
final class ProtocolPeer {
    let fd: Int32
    private var inbox: [UInt8] = []

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); throw ProbeError("cannot connect to \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        guard bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw ProbeError("send failed")
        }
    }

    /// The next message that satisfies `wanted` (others are skipped), nil after `timeout` seconds.
    func next(timeout: TimeInterval = 10, _ wanted: ([String: Any]) -> Bool) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let nl = inbox.firstIndex(of: 10) {
                let line = Array(inbox[..<nl])
                inbox.removeSubrange(...nl)
                if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], wanted(object) {
                    return object
                }
                continue
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else { throw ProbeError("the server closed the connection") }
            inbox += chunk[..<n]
        }
        return nil
    }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
