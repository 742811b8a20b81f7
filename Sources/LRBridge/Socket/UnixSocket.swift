import Glibc

/// Why a socket could not be reached or stopped working, in words a person can act on.
public struct BridgeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    /// The errno of a failed connect (ECONNREFUSED: nobody listens), when there was one.
    public let code: Int32?
    public init(_ description: String, code: Int32? = nil) { self.description = description; self.code = code }
    /// The same words are the same error, whatever errno was behind them.
    public static func == (a: BridgeError, b: BridgeError) -> Bool { a.description == b.description }
}

/// A connected Unix-domain stream socket in non-blocking mode: every call returns at once, so the UI thread that
/// owns it never waits on the training process. Not thread-safe: one thread uses it.
final class UnixSocket {
    enum ReadOutcome: Equatable {
        /// This many bytes were appended.
        case data(Int)
        /// Nothing to read now.
        case wouldBlock
        /// The other side closed the connection.
        case closed
        case failed(BridgeError)
    }

    /// sun_path's size on Linux, terminating NUL included.
    static let maxPathBytes = 108

    private(set) var fd: Int32

    /// Connects to the socket at `path`. A Unix-domain connect does not wait for the server's `accept`, so this
    /// returns at once; a full backlog is retried for at most `timeoutMs`.
    init(connectingTo path: String, timeoutMs: Int = 2000) throws(BridgeError) {
        guard path.utf8.count < Self.maxPathBytes else {
            throw BridgeError("\(path): socket path is \(path.utf8.count) bytes, more than a Unix socket allows (\(Self.maxPathBytes - 1))")
        }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw BridgeError("cannot create a socket: \(Self.errorText(errno))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: Array(path.utf8))
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        var waitedMs = 0
        while true {
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if rc == 0 { break }
            let e = errno
            if e == EINTR { continue }
            if (e == EAGAIN || e == EINPROGRESS) && waitedMs < timeoutMs {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 50)
                waitedMs += 50
                if e == EINPROGRESS, p.revents & Int16(POLLOUT) != 0 {
                    var soError: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
                    if soError == 0 { break }
                    Glibc.close(fd)
                    throw Self.connectError(path, soError)
                }
                continue
            }
            Glibc.close(fd)
            throw Self.connectError(path, e)
        }
    }

    /// Takes over a connected stream socket made elsewhere (a forward or relay over SSH), non-blocking from now.
    init(adopting descriptor: Int32) {
        fd = descriptor
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    deinit { close() }

    /// Hands the descriptor over (to another `UnixSocket` on another thread); this one is closed without closing it.
    func release() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    var isOpen: Bool { fd >= 0 }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Appends what can be read now to `buffer`, at most `limit` bytes. Read into scratch space first, so only the
    /// bytes that came are appended (a viewer of hundreds of runs calls this for each, ten times a second).
    func read(into buffer: inout [UInt8], limit: Int = 1 << 16) -> ReadOutcome {
        guard fd >= 0 else { return .closed }
        while true {
            let n = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: limit) { scratch -> Int in
                let n = recv(fd, scratch.baseAddress!, limit, Int32(MSG_DONTWAIT))
                if n > 0 { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<n])) }
                return n
            }
            if n > 0 { return .data(n) }
            if n == 0 { return .closed }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            if e == ECONNRESET { return .closed }
            return .failed(BridgeError("reading the socket failed: \(Self.errorText(e))"))
        }
    }

    /// Writes as much of `bytes` as the socket takes now; returns how many bytes went out, or nil when the
    /// connection is gone. Never raises SIGPIPE.
    func write(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard fd >= 0 else { return nil }
        if bytes.isEmpty { return 0 }
        while true {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return 0 }
            return nil
        }
    }

    /// Waits up to `timeoutMs` for something to read (only before the UI starts: the greeting).
    func waitReadable(timeoutMs: Int) -> Bool {
        guard fd >= 0 else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let rc = poll(&p, 1, Int32(timeoutMs))
            if rc < 0 && errno == EINTR { continue }
            return rc > 0
        }
    }

    static func connectError(_ path: String, _ code: Int32) -> BridgeError {
        let message = connectMessage(path, code)
        return BridgeError(message.description, code: code)
    }

    private static func connectMessage(_ path: String, _ code: Int32) -> BridgeError {
        switch code {
        case ENOENT:
            return BridgeError("\(path): no such socket (the run has ended or was never started with lrtop.attach)")
        case ECONNREFUSED:
            return BridgeError("\(path): connection refused (no process listens on it: the run has ended or crashed)")
        case EACCES, EPERM:
            return BridgeError("\(path): permission denied (the socket belongs to another user; attach as that user)")
        case ENOTSOCK:
            return BridgeError("\(path): not a socket (give a run folder, its run.jsonl, or the socket the run printed)")
        case EAGAIN:
            return BridgeError("\(path): the run is not accepting connections (its backlog is full); try again")
        default:
            return BridgeError("\(path): cannot connect: \(errorText(code))")
        }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}

@available(*, unavailable, message: "UnixSocket is used from one thread")
extension UnixSocket: Sendable {}
