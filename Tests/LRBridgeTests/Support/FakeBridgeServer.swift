import Foundation
import Glibc

/// A small bridge server on a Unix socket, on its own thread, that speaks just enough of the protocol for the
/// client's tests: it greets, sends a status, records every line a client sends, and answers each command with
/// what `reply` returns. Tests also make it send raw lines and hang up.
final class FakeBridgeServer: @unchecked Sendable {
    let path: String
    let logPath: String
    private let lock = NSLock()
    private let sendLock = NSLock()
    private var listener: Int32 = -1
    private var client: Int32 = -1
    private var received: [String] = []
    private var thread: Thread?
    private var stopping = false
    /// Lines to send after each command line (JSON without the newline); `id` and `text` of the command given.
    private let reply: @Sendable (Int, String) -> [String]
    private let greet: Bool
    /// The greeting to send instead of `helloLine` (LOG replaced by the log's path).
    private let hello: String
    /// The answer to a stacks request with this id (spec #25 §3), or nil to ignore such requests.
    private let stacks: (@Sendable (Int) -> String)?

    init(path: String? = nil, logPath: String = "/tmp/none/run.jsonl", greet: Bool = true, hello: String = helloLine,
         stacks: (@Sendable (Int) -> String)? = nil,
         reply: @escaping @Sendable (Int, String) -> [String] = { id, _ in [#"{"type":"ack","id":\#(id),"ok":true}"#] }) throws {
        self.path = path ?? "/tmp/lrtop-fake-\(getpid())-\(UUID().uuidString.prefix(6)).sock"
        self.logPath = logPath
        self.reply = reply
        self.greet = greet
        self.hello = hello
        self.stacks = stacks
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(self.path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(listener, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    static let helloLine = #"{"type":"hello","protocol":1,"run":"fake-run","log":"LOG","pid":4242,"framework":"plain","world_size":1}"#
    static let statusLine = #"{"type":"status","state":"running","step":12,"epoch":0,"total_steps":200,"lr":[0.001,0.002],"groups":["body","head"],"hold":false,"override":false,"scheduler":"cosine T_max=200","loss_scale":null,"skipped_steps":0,"checkpoints":1}"#

    /// Every line a client sent, in order.
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return received }

    /// Sends raw bytes to the connected client (waits up to 2 s for one).
    func sendRaw(_ text: String) {
        let deadline = Date().addingTimeInterval(2)
        while connectedClient() < 0 && Date() < deadline { usleep(5000) }
        let fd = connectedClient()
        guard fd >= 0 else { return }
        let bytes = Array(text.utf8)
        // One writer at a time, so lines from the test and from the server thread never interleave.
        sendLock.lock()
        defer { sendLock.unlock() }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    func send(_ line: String) { sendRaw(line + "\n") }

    /// Closes the client's connection (the training process went away, as far as the client can tell).
    func hangUp() {
        lock.lock()
        let fd = client
        client = -1
        lock.unlock()
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    func stop() {
        stopListeningKeepingFile()
        hangUp()
        unlink(path)
    }

    /// Stops accepting but leaves the socket file, as a killed process does.
    func stopListeningKeepingFile() {
        lock.lock()
        stopping = true
        let l = listener
        listener = -1
        lock.unlock()
        if l >= 0 { shutdown(l, Int32(SHUT_RDWR)); close(l) }
    }

    private func connectedClient() -> Int32 { lock.lock(); defer { lock.unlock() }; return client }

    private func serve() {
        let l = listener
        let fd = accept(l, nil, nil)
        guard fd >= 0 else { return }
        lock.lock()
        if stopping { lock.unlock(); close(fd); return }
        client = fd
        lock.unlock()
        if greet {
            send(hello.replacingOccurrences(of: "LOG", with: logPath))
            send(Self.statusLine)
        }
        var pending = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return }
            pending += chunk[0..<n]
            while let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                lock.lock(); received.append(line); lock.unlock()
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   object["type"] as? String == "command", let id = object["id"] as? Int, let text = object["text"] as? String {
                    for r in reply(id, text) { send(r) }
                }
                if let stacks, let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   object["type"] as? String == "stacks", let id = object["id"] as? Int {
                    send(stacks(id))
                }
            }
        }
    }
}

/// A run log with a header and some steps, as the Python package writes it.
func writeRunLog(_ path: String, socket: String?, steps: Int = 3, end: String? = nil) throws {
    var lines: [String] = []
    let socketField = socket.map { #","socket":"\#($0)","source":"pytorch","framework":"plain","world_size":1"# } ?? ""
    lines.append(#"{"type":"header","schema":1,"lrtop_version":"0.1.0","start_time":"2026-12-02T15:00:00Z","seed":0,"groups":["body","head"],"steps_per_epoch":100,"total_steps":200,"config":{"optimizer":"adamw"}\#(socketField)}"#)
    for s in stride(from: 1, through: steps, by: 1) {
        lines.append(#"{"type":"step","step":\#(s),"epoch":0,"lrs":[0.001,0.002],"loss":\#(2.0 / Double(s)),"grad_norm":1.0,"samples_per_sec":1000,"wall_time":\#(Double(s) * 0.1)}"#)
    }
    if let end { lines.append(#"{"type":"end","reason":"\#(end)","step":\#(steps),"epoch":0}"#) }
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
}

func appendLine(_ path: String, _ line: String) throws {
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: Data((line + "\n").utf8))
}

/// Polls `body` until it returns true or `timeout` seconds pass.
func eventually(timeout: Double = 5, _ body: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if body() { return true }
        usleep(10_000)
    }
    return body()
}

struct TempFolder {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "lrtop-bridge-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
