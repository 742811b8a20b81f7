import Foundation
import Glibc
import LRTUI

/// `lrtop attach HOST:RUN`'s link to the run: its socket reached through the host's master connection (forwarded or
/// relayed), and its log copied as it grows. When the link drops (the master killed, the network gone) a thread of
/// its own re-establishes it with backoff (0.5 s, doubling, at most 10 s between tries) while the header says so;
/// the run never notices (a viewer reconnecting is a new client of its socket). `close()` leaves no ssh process, no
/// forwarded socket and no copy behind.
public final class SSHTransport: AttachTransport, @unchecked Sendable {
    enum Phase: Equatable {
        case connected
        case reconnecting(attempt: Int, nextAt: Double?, error: String?)
        /// The run's socket is gone there: nothing to reconnect to (the log says how it ended).
        case gone
    }

    public let connector: RemoteConnector
    public let route: Route
    /// The run's log on the host.
    public let remoteLog: String
    private let mirror: LogMirror
    private let subrunLister: SubrunLister
    private var subrunMirrors: [String: LogMirror] = [:]
    private var lastSubrunLook = 0.0

    private let state = NSCondition()
    private var phase = Phase.connected
    private var ready: ConnectedSocket?
    private var wantReconnect = false
    private var closing = false
    private var finished = false
    // Owned by the worker thread once it runs.
    private var relayProcess: Subprocess?
    private var forwardPath: String?
    private var lastMirrorTry = 0.0

    /// Takes over what `RemoteConnector.open` made (its forward or relay process), starts copying `remoteLog` into
    /// `localLog`, and starts the thread that keeps the link.
    public init(connector: RemoteConnector, route: Route, forward: String?, relay: Subprocess?,
                remoteLog: String, localLog: String) throws(RemoteError) {
        self.connector = connector
        self.route = route
        self.remoteLog = remoteLog
        mirror = LogMirror(remote: remoteLog, local: localLog)
        subrunLister = SubrunLister(runDir: (remoteLog as NSString).deletingLastPathComponent)
        forwardPath = forward
        relayProcess = relay
        try mirror.start(connector.master)
        let worker = Thread { [self] in keepLink() }
        worker.name = "lrtop-ssh-link"
        worker.start()
    }

    var host: String { connector.master.host }

    // MARK: AttachTransport (the UI thread)

    public func poll(_ current: BridgeConnection) -> BridgeConnection? {
        state.lock()
        defer { state.unlock() }
        if let r = ready {
            ready = nil
            return BridgeConnection(adopting: r)
        }
        if case .closed(let reason?) = current.state, phase == .connected, !closing {
            // The run closing it and the link dropping look the same from here: the reconnection tells them apart.
            _ = reason
            phase = .reconnecting(attempt: 1, nextAt: nil, error: "the link dropped")
            wantReconnect = true
            state.broadcast()
        }
        return nil
    }

    public var isReconnecting: Bool {
        state.withLock { if case .reconnecting = phase { return true } else { return false } }
    }

    public var note: String? {
        let now = Monotonic.now()
        return state.withLock { () -> String? in
            switch phase {
            case .connected:
                return "via \(host) · \(route)"
            case .reconnecting(let attempt, let nextAt, let error):
                // Short, so the header keeps it: ssh's own words last ("Connection refused"), the whole in `details`.
                var parts: [String] = []
                if let nextAt { parts.append("try \(attempt + 1) in \(max(1, Int((nextAt - now).rounded(.up)))) s") }
                else if attempt > 1 { parts.append("try \(attempt)") }
                if let error { parts.append(Self.gist(error)) }
                return "reconnecting to \(host)" + (parts.isEmpty ? "" : " (" + parts.joined(separator: ": ") + ")")
            case .gone:
                return nil
            }
        }
    }

    public var details: [LiveStatus.Detail] {
        let link: String = state.withLock {
            if case .reconnecting(_, _, let error?) = phase { return "ssh \(host) · reconnecting: \(error)" }
            return "ssh \(host) · \(route)"
        }
        return [LiveStatus.Detail("link", link), LiveStatus.Detail("log", "\(host):\(remoteLog)")]
    }

    /// The last clause of an error ("cannot reach h: ssh: connect to host h port 22: Connection refused" ->
    /// "Connection refused").
    static func gist(_ error: String) -> String {
        let last = error.components(separatedBy: ": ").last ?? error
        return last.count > 60 ? String(last.prefix(59)) + "…" : last
    }

    public func close() {
        state.lock()
        let already = closing
        closing = true
        state.broadcast()
        let deadline = Date().addingTimeInterval(10)
        while !finished && state.wait(until: deadline) {}
        state.unlock()
        if !already { connector.master.close(exitIfLast: true) }
    }

    // MARK: the worker thread

    private func keepLink() {
        while true {
            state.lock()
            while !closing && !wantReconnect {
                if !state.wait(until: Date().addingTimeInterval(0.5)) { break }
            }
            let (stop, reconnect) = (closing, wantReconnect)
            state.unlock()
            if stop { break }
            if reconnect { reestablish() } else { keepMirror() }
        }
        relayProcess?.terminate(grace: 0.5)
        relayProcess = nil
        if let f = forwardPath { connector.master.cancel(forward: f) }
        forwardPath = nil
        mirror.stop()
        subrunLister.stop()
        for m in subrunMirrors.values { m.stop() }
        subrunMirrors = [:]
        state.withLock {
            finished = true
            state.broadcast()
        }
    }

    /// The log copy stopped (its ssh died with the master) while the socket's link still stands: start it again once
    /// a master answers, at most every 2 s.
    private func keepMirror() {
        followSubruns()
        guard !mirror.isRunning, Monotonic.now() - lastMirrorTry > 2 else { return }
        lastMirrorTry = Monotonic.now()
        if connector.master.isAlive() { try? mirror.start(connector.master) }
    }

    /// Every half second: new sub-runs there get a copy here, beside the run's (where the find-lr panel looks), and
    /// a copy whose stream ended (a dropped link) goes on from where it stopped.
    private func followSubruns() {
        guard Monotonic.now() - lastSubrunLook >= 0.5 else { return }
        lastSubrunLook = Monotonic.now()
        if !subrunLister.isRunning {
            guard connector.master.isAlive() else { return }
            try? subrunLister.start(connector.master)
        }
        guard let paths = subrunLister.list() else { return }
        let localRun = (mirror.local as NSString).deletingLastPathComponent
        for path in paths {
            if let m = subrunMirrors[path] {
                if !m.isRunning && connector.master.isAlive() { try? m.start(connector.master) }
                continue
            }
            let local = localRun + "/" + path
            let folder = (local as NSString).deletingLastPathComponent
            mkdir(localRun + "/subruns", 0o700)
            guard mkdir(folder, 0o700) == 0 || errno == EEXIST else { continue }
            let m = LogMirror(remote: subrunLister.runDir + "/" + path, local: local)
            if (try? m.start(connector.master)) != nil { subrunMirrors[path] = m }
        }
    }

    private var cancelled: @Sendable () -> Bool { { [self] in state.withLock { closing } } }

    private func reestablish() {
        var attempt = 0
        var lastError: String? = state.withLock {
            if case .reconnecting(_, _, let e) = phase { return e }
            return nil
        }
        while !cancelled() {
            attempt += 1
            setPhase(.reconnecting(attempt: attempt, nextAt: nil, error: lastError))
            relayProcess?.terminate(grace: 0.5)
            relayProcess = nil
            if let f = forwardPath { connector.master.cancel(forward: f) }
            forwardPath = nil
            do {
                try connector.master.connect(timeout: 20, cancelled: cancelled)
                if !mirror.isRunning { try mirror.start(connector.master) }
                guard try runIsThere() else {
                    state.withLock {
                        phase = .gone
                        wantReconnect = false
                    }
                    return
                }
                let (connected, forward, relay) = try connector.reopen(route, cancelled: cancelled)
                forwardPath = forward
                relayProcess = relay
                state.withLock {
                    ready = connected
                    phase = .connected
                    wantReconnect = false
                }
                return
            } catch {
                if case .interrupted = error.kind { return }
                lastError = error.description
            }
            let delay = min(10, 0.5 * pow(2, Double(attempt - 1)))
            setPhase(.reconnecting(attempt: attempt, nextAt: Monotonic.now() + delay, error: lastError))
            state.lock()
            let until = Date().addingTimeInterval(delay)
            while !closing && state.wait(until: until) {}
            state.unlock()
        }
    }

    private func setPhase(_ p: Phase) { state.withLock { phase = p } }

    /// Whether the run's socket is still there and its process alive.
    private func runIsThere() throws(RemoteError) -> Bool {
        let pid = connector.pid.map(String.init) ?? String((connector.socket as NSString).lastPathComponent.prefix { $0.isNumber })
        let r = try connector.master.run(script: #"[ -S "$1" ] || exit 1; [ -z "$2" ] || kill -0 "$2" 2>/dev/null || exit 1; echo live"#,
                                         arguments: [connector.socket, pid], timeout: 20, cancelled: cancelled)
        return r.status == 0 && r.text.contains("live")
    }
}
