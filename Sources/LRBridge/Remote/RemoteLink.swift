import Foundation
import Glibc
import LRTUI

/// How the viewer reaches a run's socket on another host, through the host's master connection.
public enum Route: Equatable, Sendable, CustomStringConvertible {
    /// `ssh -O forward -L local.sock:remote.sock`: the socket forwarded into the private folder.
    case forward
    /// A relay between ssh's stdio and the socket, run there by a program the host has.
    case relay(Relay)

    public var description: String {
        switch self {
        case .forward: return "socket forwarded"
        case .relay(let r): return "relay: " + r.tool.rawValue
        }
    }
}

/// A program on the remote that copies between its stdio and a Unix socket, for a server that refuses to forward
/// one (`AllowStreamLocalForwarding no`).
public struct Relay: Equatable, Sendable {
    public enum Tool: String, CaseIterable, Sendable {
        /// `python -m lrtop.relay` with the run's own interpreter (or python3 where it has the lrtop package).
        case python
        case socat
        /// OpenBSD netcat's `nc -U`.
        case nc
    }

    public var tool: Tool
    /// The command line there, with the socket's path in it.
    public var command: String
}

/// What `lrtop attach --via` asks for: the forward with a relay where the server refuses it (auto), or one of them.
public enum Via: String, CaseIterable, Sendable {
    case auto, forward, python, socat, nc

    var relayTool: Relay.Tool? { Relay.Tool(rawValue: rawValue) }
}

/// Opens connections to one run's socket on a host: forwarded or relayed, each proved by the run's greeting.
public struct RemoteConnector: Sendable {
    public let master: SSHMaster
    public let socket: String
    /// The run's process there (for its Python, as a relay), when known.
    public let pid: Int?
    /// How long the run has to greet a new connection.
    public var greetingTimeout: Double = 10

    public init(master: SSHMaster, socket: String, pid: Int?) {
        self.master = master; self.socket = socket; self.pid = pid
    }

    var label: String { master.host + ":" + socket }

    /// A connection by the route `via` asks for; `auto` forwards and falls back to a relay when the forward is
    /// refused. Returns the connection, the route it took, and the process that carries a relay.
    public func open(_ via: Via, cancelled: @escaping () -> Bool = { false })
        throws(RemoteError) -> (ConnectedSocket, Route, forward: String?, relay: Subprocess?) {
        if via == .auto || via == .forward {
            do {
                let (connected, local) = try viaForward(cancelled: cancelled)
                return (connected, .forward, local, nil)
            } catch where via == .auto && error.kind == .noForwarding {
                let relay = try probe(nil, refusedForward: error)
                let (connected, process) = try viaRelay(relay, cancelled: cancelled)
                return (connected, .relay(relay), nil, process)
            }
        }
        let relay = try probe(via.relayTool, refusedForward: nil)
        let (connected, process) = try viaRelay(relay, cancelled: cancelled)
        return (connected, .relay(relay), nil, process)
    }

    /// Through `route` again (a reconnection): the same relay command, or a new forward.
    public func reopen(_ route: Route, cancelled: @escaping () -> Bool = { false })
        throws(RemoteError) -> (ConnectedSocket, forward: String?, relay: Subprocess?) {
        switch route {
        case .forward:
            let (connected, local) = try viaForward(cancelled: cancelled)
            return (connected, local, nil)
        case .relay(let relay):
            let (connected, process) = try viaRelay(relay, cancelled: cancelled)
            return (connected, nil, process)
        }
    }

    func viaForward(cancelled: @escaping () -> Bool) throws(RemoteError) -> (ConnectedSocket, String) {
        let local = try master.forward(socket)
        do {
            let s = try UnixSocket(connectingTo: local)
            let received = try Self.greet(s, label: label, timeout: greetingTimeout, cancelled: cancelled)
            return (ConnectedSocket(fd: s.release(), label: label + " (forwarded)", received: received), local)
        } catch let e as RemoteError {
            master.cancel(forward: local)
            // The master made the local socket, but the server refused to open the channel behind it.
            if e.kind == .noForwarding {
                throw RemoteError(.noForwarding, "\(master.host) refused to forward the run's socket (its sshd has AllowStreamLocalForwarding no?)")
            }
            throw e
        } catch {
            master.cancel(forward: local)
            throw RemoteError(.other, "\(error)")
        }
    }

    func viaRelay(_ relay: Relay, cancelled: @escaping () -> Bool) throws(RemoteError) -> (ConnectedSocket, Subprocess) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw RemoteError(.other, "cannot make a socket pair: \(String(cString: strerror(errno)))")
        }
        let process: Subprocess
        do {
            process = try master.spawn(relay.command, stdin: .descriptor(pair[1]), stdout: .descriptor(pair[1]), stderr: .pipe)
        } catch {
            close(pair[0]); close(pair[1])
            throw error
        }
        close(pair[1])
        let s = UnixSocket(adopting: pair[0])
        do {
            let received = try Self.greet(s, label: label, timeout: greetingTimeout, cancelled: cancelled)
            return (ConnectedSocket(fd: s.release(), label: label + " (relay: \(relay.tool.rawValue))", received: received), process)
        } catch {
            process.terminate(grace: 0.5)
            let said = Self.lastLine(process)
            if error.kind == .noForwarding {
                throw RemoteError(.noRun, "the relay (\(relay.tool.rawValue)) on \(master.host) could not reach the run's socket" + (said.map { ": " + $0 } ?? ""))
            }
            throw error
        }
    }

    /// Which relay the host has: `tool`, or the first of the run's Python, socat and nc.
    func probe(_ tool: Relay.Tool?, refusedForward: RemoteError?) throws(RemoteError) -> Relay {
        let r = try master.run(script: Self.probeScript, arguments: [socket, pid.map(String.init) ?? "", tool?.rawValue ?? "any"],
                               timeout: 20)
        return try Self.relay(probed: r.text, socket: socket, host: master.host, tool: tool, refusedForward: refusedForward)
    }

    /// The relay command for what `probeScript` found, or why there is none.
    static func relay(probed text: String, socket: String, host: String, tool: Relay.Tool?,
                      refusedForward: RemoteError?) throws(RemoteError) -> Relay {
        let fields = text.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) ?? []
        let q = SSHCommand.quote
        switch fields.first == "relay" && fields.count >= 2 ? Relay.Tool(rawValue: fields[1]) : nil {
        case .python? where fields.count >= 4:
            let python = q(fields[2]) + " -m lrtop.relay " + q(socket)
            return Relay(tool: .python, command: fields[3].isEmpty ? python : "env PYTHONPATH=" + q(fields[3]) + " " + python)
        case .socat?:
            guard !socket.contains(","), !socket.contains("!") else { break }
            return Relay(tool: .socat, command: "socat - " + q("UNIX-CONNECT:" + socket))
        case .nc?:
            return Relay(tool: .nc, command: "nc -U " + q(socket))
        default:
            break
        }
        let wanted = tool.map { "no \($0.rawValue) relay" } ?? "no relay program"
        let why = refusedForward.map { $0.description + ", and " } ?? ""
        throw RemoteError(.noForwarding, why + "\(host) has \(wanted) (python with the lrtop package, socat, or OpenBSD nc -U): install one there (pip install lrtop, or apt-get install socat), or allow forwarding (AllowStreamLocalForwarding yes)")
    }

    /// Sends the client's hello and waits for the run's: the proof that the link reaches an lrtop run. Returns every
    /// byte read, for the `BridgeConnection` that takes the socket over. A link closed before a byte came back
    /// throws `.noForwarding` (the server refused the channel, or the relay could not connect).
    static func greet(_ s: UnixSocket, label: String, timeout: Double, cancelled: () -> Bool) throws(RemoteError) -> [UInt8] {
        let hello = ClientMessage.hello()
        var sent = 0
        var received: [UInt8] = []
        let deadline = Monotonic.now() + timeout
        while true {
            if sent < hello.count {
                guard let n = s.write(hello[sent...]) else { throw RemoteError(.noForwarding, "\(label): the link closed at once") }
                sent += n
            }
            if let nl = received.firstIndex(of: UInt8(ascii: "\n")) {
                guard case .hello? = try? ServerMessage.parse(received[..<nl]) else {
                    throw RemoteError(.other, "\(label): what answers there is not an lrtop run (\(ServerMessage.preview(received[..<nl])))")
                }
                return received
            }
            if Monotonic.now() > deadline {
                throw RemoteError(.other, "\(label): no greeting from the run within \(Int(timeout)) s (is it stuck, or not an lrtop run's socket?)")
            }
            if cancelled() { throw RemoteError(.interrupted(SIGINT), "interrupted") }
            _ = s.waitReadable(timeoutMs: 50)
            switch s.read(into: &received) {
            case .data, .wouldBlock: continue
            case .closed:
                throw RemoteError(.noForwarding, "\(label): the link closed before the run greeted")
            case .failed(let e):
                throw RemoteError(.noForwarding, "\(label): \(e.description)")
            }
        }
    }

    static func lastLine(_ process: Subprocess) -> String? {
        guard process.errors >= 0 else { return nil }
        _ = fcntl(process.errors, F_SETFL, O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(process.errors, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init)
    }

    /// Finds a relay program there. $1 the socket, $2 the run's pid ("" unknown), $3 python|socat|nc|any.
    /// The run's own interpreter comes first (its command line and PYTHONPATH, from /proc), then python3.
    static let probeScript = #"""
    s=$1; pid=$2; want=$3
    try_python() {
      if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
        exe=$(tr '\0' '\n' < "/proc/$pid/cmdline" | head -n 1)
        case $exe in /*) ;; *) exe=$(readlink "/proc/$pid/exe" 2>/dev/null);; esac
        pp=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^PYTHONPATH=//p' | head -n 1)
        if [ -n "$exe" ] && [ -x "$exe" ] && PYTHONPATH="$pp" "$exe" -c 'import lrtop.relay' >/dev/null 2>&1; then
          printf 'relay\tpython\t%s\t%s\n' "$exe" "$pp"; exit 0
        fi
      fi
      if command -v python3 >/dev/null 2>&1 && python3 -c 'import lrtop.relay' >/dev/null 2>&1; then
        printf 'relay\tpython\tpython3\t\n'; exit 0
      fi
    }
    try_socat() { if command -v socat >/dev/null 2>&1; then printf 'relay\tsocat\n'; exit 0; fi; }
    try_nc() { if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -e '-U'; then printf 'relay\tnc\n'; exit 0; fi; }
    case $want in
      python) try_python;; socat) try_socat;; nc) try_nc;;
      *) try_python; try_socat; try_nc;;
    esac
    printf 'none\n'
    """#
}
