import Foundation
import LRLog

/// One client connection to a training process's bridge socket: JSON lines out, parsed messages in.
/// `poll()` and `send` never block (non-blocking socket, buffered writes), so the UI thread can call them every
/// frame. Not thread-safe: one thread uses it.
public final class BridgeConnection {
    public enum State: Equatable, Sendable {
        case connected
        /// Closed by the other side or by an error (the reason in words), or by `close()` (nil).
        case closed(reason: String?)
    }

    public let path: String
    /// The server's greeting; nil until it arrives (the run answers between optimizer steps).
    public private(set) var hello: BridgeHello?
    public private(set) var state: State = .connected
    /// Lines from the server that could not be read (skipped; the connection stays up).
    public private(set) var warnings: [String] = []
    /// Bytes queued but not yet taken by the socket.
    public var pendingOutput: Int { outbox.count }

    /// More than this queued and unsent means the server stopped reading.
    static let maxOutbox = 1 << 20

    private let socket: UnixSocket
    private var inbox: [UInt8] = []
    private var outbox: [UInt8] = []
    private var early: [ServerMessage] = []
    private var nextID = 1
    /// Pushed records are read with one parser for the connection (metric names interned once).
    private let recordDecoder = RunLogLineDecoder()

    /// Connects (a Unix-domain connect returns at once) and says hello. The greeting may take a moment (a run
    /// that answers only between steps): `waitForGreeting` waits for it before a UI starts, `poll` picks it up after.
    public init(path: String) throws(BridgeError) {
        self.path = path
        socket = try UnixSocket(connectingTo: path)
        outbox = ClientMessage.hello()
        flush()
    }

    /// Takes over a socket that is already connected, and greeted (`ConnectedSocket`): the bytes it read are read
    /// again here, so the run's hello is this connection's.
    public init(adopting connected: ConnectedSocket) {
        path = connected.label
        socket = UnixSocket(adopting: connected.fd)
        inbox = connected.received
    }

    /// Waits up to `timeoutMs` for the greeting (before any UI runs: it blocks). `onSlow` is called once after a
    /// second without it, to say what is being waited for.
    public func waitForGreeting(timeoutMs: Int = 30_000, onSlow: () -> Void = {}) throws(BridgeError) -> BridgeHello {
        var waitedMs = 0
        let sliceMs = 20
        var toldSlow = false
        while true {
            early += poll()
            if case .closed(let reason) = state {
                throw BridgeError("\(path): \(reason ?? "closed")" + (hello == nil ? " before the run greeted" : ""))
            }
            if let hello { return hello }
            if waitedMs >= timeoutMs {
                close()
                let seen = early.isEmpty ? "nothing" : "no greeting"
                throw BridgeError("\(path): \(seen) from the other side within \(Double(timeoutMs) / 1000) s (is the run stuck inside a step, or not an lrtop run's socket?)")
            }
            if waitedMs >= 1000 && !toldSlow {
                toldSlow = true
                onSlow()
            }
            _ = socket.waitReadable(timeoutMs: sliceMs)
            waitedMs += sliceMs
        }
    }

    /// Queues one command line; returns its id, or nil when the connection is closed.
    public func send(command text: String) -> Int? {
        guard state == .connected else { return nil }
        let id = nextID
        nextID += 1
        outbox += ClientMessage.command(id: id, text: text)
        flush()
        return id
    }

    /// Asks for the threads of the run's process (spec #25 §3); returns the request's id, nil when closed.
    public func requestStacks() -> Int? {
        guard state == .connected else { return nil }
        let id = nextID
        nextID += 1
        outbox += ClientMessage.stacks(id: id)
        flush()
        return id
    }

    /// The socket's descriptor, for a poll(2) over many connections (-1 once closed); and whether bytes wait to go.
    public var descriptor: Int32 { socket.fd }
    public var wantsToWrite: Bool { !outbox.isEmpty }

    /// Asks the run to push its log's records from line `fromLine` on; false when the connection is closed.
    @discardableResult
    public func subscribe(fromLine: Int) -> Bool {
        guard state == .connected else { return false }
        outbox += ClientMessage.subscribe(fromLine: fromLine)
        flush()
        return true
    }

    /// Sends what is queued and returns the messages that arrived since the last call. Never blocks.
    public func poll() -> [ServerMessage] {
        var messages = early
        early = []
        guard state == .connected else { return messages }
        flush()
        if case .closed(let reason) = receive(into: &messages) { finish(reason) }
        for case .hello(let h) in messages where hello == nil {
            hello = h
            if h.protocolVersion != BridgeProtocol.version {
                finish("the run speaks bridge protocol \(h.protocolVersion), this lrtop speaks \(BridgeProtocol.version): give the run the lrtop Python package of this lrtop's version, \(LRTopVersion.release) (the same wheel, or pip install ./python from this lrtop's source)")
            }
        }
        return messages
    }

    /// Waits up to `timeoutMs` for something to read (a headless viewer's idle wait; never from a UI).
    public func waitReadable(timeoutMs: Int) {
        if state == .connected, socket.waitReadable(timeoutMs: timeoutMs) { return }
        if state != .connected { usleep(useconds_t(timeoutMs) * 1000) }
    }

    public func close() {
        if state == .connected { state = .closed(reason: nil) }
        socket.close()
    }

    /// The reason given when the other side simply closed the connection.
    public static let closedByPeer = "the run closed the connection"

    private func finish(_ reason: String?) {
        state = .closed(reason: reason ?? Self.closedByPeer)
        socket.close()
    }

    private func flush() {
        guard !outbox.isEmpty, state == .connected else { return }
        guard let n = socket.write(outbox[...]) else {
            finish("the run closed the connection (writing failed)")
            return
        }
        outbox.removeFirst(n)
        if outbox.count > Self.maxOutbox { finish("the run stopped reading its socket (over 1 MiB unsent)") }
    }

    private enum Received { case open, closed(String?) }

    /// Reads what is there and appends complete messages. Returns `.closed` once the other side is gone.
    private func receive(into messages: inout [ServerMessage]) -> Received {
        var outcome = Received.open
        reading: while true {
            switch socket.read(into: &inbox) {
            case .data: continue
            case .wouldBlock: break reading
            case .closed: outcome = .closed(nil); break reading
            case .failed(let e): outcome = .closed(e.description); break reading
            }
        }
        var start = 0
        while let nl = inbox[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = inbox[start..<nl]
            start = nl + 1
            if line.count > BridgeProtocol.maxLineBytes {
                return .closed("the run sent a line of \(line.count) bytes, over the protocol's \(BridgeProtocol.maxLineBytes)")
            }
            if line.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
            do {
                messages.append(try ServerMessage.parse(line, records: recordDecoder))
            } catch {
                // Kept up to a bound: a peer sending bad lines forever must not grow the viewer's memory.
                if warnings.count < 1000 { warnings.append("malformed message from the run: \(error.description)") }
            }
        }
        inbox.removeFirst(start)
        if inbox.count > BridgeProtocol.maxLineBytes {
            return .closed("the run sent over \(BridgeProtocol.maxLineBytes) bytes without a newline")
        }
        return outcome
    }
}

/// A connected stream socket to a run's bridge made on one thread for a `BridgeConnection` on another: its
/// descriptor, what it says in messages, and the bytes already read from it (the greeting that proved it works).
public struct ConnectedSocket: Sendable {
    public let fd: Int32
    public let label: String
    public let received: [UInt8]

    public init(fd: Int32, label: String, received: [UInt8]) {
        self.fd = fd; self.label = label; self.received = received
    }
}

@available(*, unavailable, message: "BridgeConnection is used from one thread")
extension BridgeConnection: Sendable {}
