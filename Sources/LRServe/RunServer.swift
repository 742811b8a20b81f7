import Foundation
import Glibc
import Synchronization
import LRBridge
import LRLog

/// What a run tells its control socket; called on the socket's service thread only, never the training loop's.
public protocol RunService: AnyObject, Sendable {
    /// The greeting (a whole line).
    func hello() -> [UInt8]
    /// A status line as of now.
    func status() -> [UInt8]
    /// A well-formed command line from client `client` with the id it sent (JSON as sent, or nil): the line to
    /// answer at once (an ack).
    func command(text: String, id: [UInt8]?, client: Int) -> [UInt8]
    /// The answer to `{"type":"stacks","id":N}`.
    func stacks(id: [UInt8]?) -> [UInt8]
    /// Each round: lines for one client each (answers of applied commands), and whether a status is due now (the
    /// run changed: a command applied, the phase changed).
    func tick() -> (answers: [(client: Int, line: [UInt8])], statusDue: Bool)
}

/// The control socket of a run trained by lrtop (docs/bridge.md, the protocol the Python bridge serves):
/// a Unix-domain socket in the per-user socket folder, mode 0600, JSON lines both ways, served by one service
/// thread that waits in poll(2). It greets clients, answers status/stacks at once, hands commands to the
/// `RunService` (which queues them for the trainer's step boundary), sends a status every 0.5 s and on change,
/// and pushes the log's records to subscribers. Nothing a client sends is trusted: lines are bounded, malformed
/// ones refused with an error line, a flood is read a bounded amount per round, a client that does not read is
/// dropped at 1 MiB of output. The trainer never waits on any of it.
public final class RunServer: @unchecked Sendable {
    public static let maxLine = BridgeProtocol.maxLineBytes
    public static let maxText = 4096
    static let maxPendingOutput = 1 << 20
    static let pushAhead = maxPendingOutput / 2
    static let statusInterval = 0.5
    static let readBudget = 1 << 16
    static let linesPerRound = 64

    public let path: String
    private let folder: String
    private let ownFolder: Bool
    private let listener: Int32
    private let wakeRead: Int32, wakeWrite: Int32
    private let records: LogLineRing?
    private let closing = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    // The service thread's own state.
    private var clients: [Client] = []
    private var nextSerial = 0
    private var lastStatus = 0.0
    private var service: (any RunService)?

    /// Binds the socket (before the run writes its log header, which names it). `warn`: one line to the user
    /// (a squatted socket folder).
    /// `folder`: where the socket goes (default: the per-user socket folder; tests give their own).
    public init(records: LogLineRing?, folder wanted: String = SocketFolder.standard(), warn: (String) -> Void) throws(ServeError) {
        self.records = records
        (folder, ownFolder) = try SocketFolder.make(wanted, warn: warn)
        SocketFolder.removeStaleSockets(in: folder)
        var random = SystemRandomNumberGenerator()
        let hex = String(format: "%08x", UInt32.random(in: 0...UInt32.max, using: &random))
        path = folder + "/\(getpid())-\(hex).sock"
        guard path.utf8.count < 108 else {
            throw ServeError("the socket path \(path) is longer than a Unix socket allows: set XDG_RUNTIME_DIR to a shorter folder")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServeError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: pathBytes)
        }
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard rc == 0, chmod(path, 0o600) == 0, listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            unlink(path)
            if ownFolder { rmdir(folder) }
            throw ServeError("cannot listen on \(path): \(why)")
        }
        listener = fd
        var pipeFDs: [Int32] = [-1, -1]
        _ = pipe(&pipeFDs)
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = pipeFDs[0]; wakeWrite = pipeFDs[1]
    }

    /// Starts serving `service` on a thread of its own.
    public func start(_ service: any RunService) {
        self.service = service
        let thread = Thread { [self] in serve(); stopped.signal() }
        thread.name = "lrtop-socket"
        thread.start()
    }

    /// Sends what is left (the last records and a final status, which carries `ended`), closes every connection and
    /// removes the socket. Waits at most 2 s for the service thread.
    public func close() {
        guard !closing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake()
        if service != nil { _ = stopped.wait(timeout: .now() + 2) }
        Glibc.close(listener)
        unlink(path)
        if ownFolder { rmdir(folder) }
        Glibc.close(wakeRead); Glibc.close(wakeWrite)
    }

    /// Wakes the service thread now (an answer is waiting), instead of at its next round.
    public func wake() { var b: UInt8 = 1; _ = write(wakeWrite, &b, 1) }

    // MARK: the service thread

    private func serve() {
        while !closing.load(ordering: .acquiring) {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            for c in clients { fds.append(pollfd(fd: c.fd, events: Int16(POLLIN) | (c.pending > 0 ? Int16(POLLOUT) : 0), revents: 0)) }
            let subscribed = clients.contains { $0.nextLine != nil }
            _ = poll(&fds, nfds_t(fds.count), subscribed ? 50 : 100)
            if fds[1].revents != 0 { var sink = [UInt8](repeating: 0, count: 64); _ = Glibc.read(wakeRead, &sink, 64) }
            if closing.load(ordering: .acquiring) { break }
            if fds[0].revents & Int16(POLLIN) != 0 { accept() }
            readClients(ready: Set(fds.dropFirst(2).filter { $0.revents != 0 }.map(\.fd)))
            round()
        }
        // The last round: answers and records still waiting, and the final status (with `ended`).
        round(finalStatus: true)
        for c in clients { c.pump(); c.close() }
        clients.removeAll()
    }

    private func round(finalStatus: Bool = false) {
        guard let service else { return }
        let (answers, statusDue) = service.tick()
        for (serial, line) in answers { clients.first { $0.serial == serial }?.send(line) }
        pushRecords()
        let now = RunProgress.monotonic()
        if !clients.isEmpty && (statusDue || finalStatus || now - lastStatus >= Self.statusInterval) {
            let line = service.status()
            for c in clients { c.send(line) }
            lastStatus = now
        }
        for c in clients { c.pump() }
        clients.removeAll { $0.closed }
    }

    private func accept() {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            nextSerial += 1
            let client = Client(fd: fd, serial: nextSerial)
            clients.append(client)
            if let service {
                client.send(service.hello())
                client.send(service.status())
            }
        }
    }

    private func readClients(ready: Set<Int32>) {
        let waiting = clients.filter { ready.contains($0.fd) || $0.inbox.contains(10) }
        guard !waiting.isEmpty else { return }
        // An equal share each, so a flooder slows only itself.
        let bytes = max(4096, Self.readBudget / waiting.count), lines = max(2, Self.linesPerRound / waiting.count)
        for c in waiting { read(c, bytes: bytes, lines: lines) }
    }

    private func read(_ client: Client, bytes: Int, lines: Int) {
        var bytes = bytes, lines = lines
        var chunk = [UInt8](repeating: 0, count: 16384)
        while !client.closed && lines > 0 {
            if let nl = client.inbox.firstIndex(of: 10) {
                let line = Array(client.inbox[..<nl])
                client.inbox.removeSubrange(...nl)
                lines -= 1
                if line.count > Self.maxLine {
                    refuse(client, "line of \(line.count) bytes is over the \(Self.maxLine)-byte limit; closing this connection")
                    client.pump()
                    client.close()
                    return
                }
                handle(line, from: client)
                continue
            }
            if client.inbox.count > Self.maxLine {
                refuse(client, "line over the \(Self.maxLine)-byte limit; closing this connection")
                client.pump()
                client.close()
                return
            }
            guard bytes > 0 else { return }
            let n = recv(client.fd, &chunk, min(chunk.count, bytes), Int32(MSG_DONTWAIT))
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return }
            guard n > 0 else { client.close(); return }  // gone (a half line it left is dropped)
            bytes -= n
            client.inbox += chunk[..<n]
        }
    }

    private func refuse(_ client: Client, _ error: String) {
        var m = JSONLine(type: "error")
        m.add("error", error)
        client.send(m.line)
    }

    private func handle(_ raw: [UInt8], from client: Client) {
        var raw = raw
        if raw.last == 13 { raw.removeLast() }
        guard raw.contains(where: { $0 != 32 && $0 != 9 }), let service else { return }
        let message: ClientLine
        do {
            message = try Self.decoder.decode(ClientLine.self, from: Data(raw))
        } catch DecodingError.typeMismatch {
            refuse(client, "malformed message (not a JSON object); send {\"type\":\"command\",...}")
            return
        } catch {
            refuse(client, "malformed message (not JSON: \(BridgeProtocolText.preview(raw))); send one JSON object per line")
            return
        }
        switch message.type {
        case "hello":
            return
        case "status":
            client.send(service.status())
        case "subscribe":
            let count = records?.lineCount ?? 0
            guard records != nil, let first = message.fromLine, (0...count).contains(first) else {
                refuse(client, "malformed subscribe: 'from_line' must be a line number from 0 to \(count) (the number of complete lines read from the log)")
                return
            }
            client.nextLine = first
            pushRecords()
        case "stacks":
            guard case .valid(let id) = message.id else {
                refuse(client, "malformed stacks: 'id' must be an integer or a string of at most 64 characters")
                return
            }
            client.send(service.stacks(id: id))
        case "command":
            if case .invalid = message.id {
                refuse(client, "malformed command: 'id' must be an integer or a string of at most 64 characters")
                return
            }
            guard let text = message.text else {
                refuse(client, "malformed command: 'text' is missing or not a string")
                return
            }
            guard text.count <= Self.maxText, !text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
                refuse(client, "malformed command: 'text' must be one line of at most \(Self.maxText) characters")
                return
            }
            var id: [UInt8]? = nil
            if case .valid(let given) = message.id { id = given }
            client.send(service.command(text: text, id: id, client: client.serial))
        default:
            let shown = message.type.map { "\"" + TerminalText.sanitized(String($0.prefix(40))) + "\"" } ?? "(none)"
            refuse(client, "unknown message type \(shown) (expected hello, status, subscribe, stacks or command)")
        }
    }

    private static let decoder = JSONDecoder()

    /// The fields a client's line may have; one of the wrong type reads as missing (an id: as invalid).
    struct ClientLine: Decodable {
        enum ID { case absent, valid([UInt8]), invalid }
        var type, text: String?
        var fromLine: Int?
        var id: ID = .absent

        enum CodingKeys: String, CodingKey { case type, text, id, fromLine = "from_line" }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = (try? c.decodeIfPresent(String.self, forKey: .type)) ?? nil
            text = (try? c.decodeIfPresent(String.self, forKey: .text)) ?? nil
            fromLine = (try? c.decodeIfPresent(Int.self, forKey: .fromLine)) ?? nil
            if !c.contains(.id) || ((try? c.decodeNil(forKey: .id)) ?? false) {
                id = .absent
            } else if let n = try? c.decode(Int.self, forKey: .id) {
                id = .valid(Array(String(n).utf8))
            } else if let s = try? c.decode(String.self, forKey: .id), s.count <= 64 {
                var b: [UInt8] = []
                b.appendJSONString(s)
                id = .valid(b)
            } else {
                id = .invalid
            }
        }
    }

    /// Sends each subscribed client the log lines it has not had, or a gap for those only in the file now.
    private func pushRecords() {
        guard let records else { return }
        for c in clients where !c.closed {
            guard var line = c.nextLine else { continue }
            while c.pending < Self.pushAhead && !c.closed {
                let (start, lines) = records.lines(from: line, limit: 256)
                if start > line {
                    var gap = JSONLine(type: "gap")
                    gap.add("from_line", line); gap.add("to_line", start)
                    c.send(gap.line)
                    line = start
                }
                if lines.isEmpty { break }
                for data in lines {
                    if data.count + 48 > Self.maxLine {
                        var gap = JSONLine(type: "gap")
                        gap.add("from_line", line); gap.add("to_line", line + 1)
                        c.send(gap.line)
                    } else {
                        c.send(Array("{\"type\":\"record\",\"line\":\(line),\"record\":".utf8) + data + [UInt8(ascii: "}"), 10])
                    }
                    line += 1
                }
            }
            c.nextLine = line
        }
    }
}

/// One connected viewer, owned by the service thread.
final class Client {
    let fd: Int32
    let serial: Int
    var inbox: [UInt8] = []
    private var outbox: [UInt8] = []
    private var sent = 0
    private(set) var closed = false
    /// The next log line to push; nil: not subscribed.
    var nextLine: Int? = nil

    init(fd: Int32, serial: Int) { self.fd = fd; self.serial = serial }

    var pending: Int { outbox.count - sent }

    func send(_ line: [UInt8]) {
        guard !closed else { return }
        outbox += line
        // A viewer that does not read is dropped rather than holding memory without end.
        if pending > RunServer.maxPendingOutput { close() }
    }

    func pump() {
        while !closed && pending > 0 {
            let n = outbox[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
                close()
                return
            }
            sent += n
        }
        if sent > 0 && (sent == outbox.count || sent > 65536) { outbox.removeFirst(sent); sent = 0 }
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

enum BridgeProtocolText {
    static func preview(_ line: [UInt8]) -> String {
        let text = TerminalText.sanitized(String(decoding: line.prefix(80), as: UTF8.self))
        return "'" + text + (line.count > 80 ? "…" : "") + "'"
    }
}
