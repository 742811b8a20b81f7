import Foundation
import Glibc

/// The runs of one other host for the fleet (issue #26), over the user's own ssh: one master connection, the
/// survey script every few seconds, and each run's socket reached as `lrtop attach HOST:` reaches it (forwarded
/// through the master, or relayed where the server refuses); each greeted connection is handed to the fleet's I/O
/// thread. It runs on a thread of its own: every step here may wait on the network, the fleet's thread never does.
final class RemoteFleetSource: @unchecked Sendable {
    let host: String
    /// Seconds between surveys of the host.
    static let surveyInterval: TimeInterval = 3

    /// What the source hands the fleet.
    enum Event {
        /// A run's socket, reached and greeted; `release` undoes the forward or relay once the connection ends.
        case reached(RemoteSurvey.Run, ConnectedSocket, release: () -> Void)
        /// The host could not be surveyed (unreachable, refused the login), in one line; nil once it can again.
        case problem(String?)
        /// A run the survey lists whose socket could not be reached (why, in one line); tried again next survey.
        case unreachable(RemoteSurvey.Run, String)
        /// The host's live runs (its sockets), after each survey.
        case surveyed([String])
    }

    private let deliver: @Sendable (Event) -> Void
    /// The sockets the fleet follows now on this host (live or connecting).
    private let following: @Sendable () -> Set<String>
    private let lock = NSLock()
    private var stopping = false
    private var done = false
    private var thread: Thread?

    /// Leave the master its persist time when stopped (else close it, unless another lrtop process uses it).
    private let keepConnection: Bool

    init(host: String, keepConnection: Bool = true, following: @escaping @Sendable () -> Set<String>,
         deliver: @escaping @Sendable (Event) -> Void) {
        self.host = host; self.keepConnection = keepConnection; self.following = following; self.deliver = deliver
    }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "lrtop-fleet-\(host)"
        thread = t
        t.start()
    }

    /// Asks the thread to stop; it does once the step it is in ends (a survey waits at most its timeout).
    func stop() { lock.withLock { stopping = true } }

    var isDone: Bool { lock.withLock { done } }

    private var cancelled: Bool { lock.withLock { stopping } }

    private func loop() {
        defer { lock.withLock { done = true } }
        var master: SSHMaster?
        while !cancelled {
            do {
                if master == nil || master?.isAlive() == false {
                    let m = try SSHMaster(host: host)
                    try m.connect(cancelled: { [self] in cancelled })
                    master = m
                }
                guard let master else { continue }
                let survey = try RemoteSurvey.of(master, cancelled: { [self] in cancelled })
                deliver(.problem(nil))
                let followed = following()
                for run in survey.runs where !followed.contains(run.socket) && !cancelled {
                    reach(run, through: master)
                }
                // After the runs it reached: a viewer waiting for the first full look sees them with it.
                deliver(.surveyed(survey.runs.map(\.socket)))
            } catch {
                deliver(.problem(error.description))
                master = nil
            }
            pause(Self.surveyInterval)
        }
        master?.close(exitIfLast: !keepConnection)
    }

    private func reach(_ run: RemoteSurvey.Run, through master: SSHMaster) {
        let connector = RemoteConnector(master: master, socket: run.socket, pid: run.pid)
        let opened: (ConnectedSocket, Route, forward: String?, relay: Subprocess?)
        do { opened = try connector.open(.auto, cancelled: { [self] in cancelled }) } catch {
            deliver(.unreachable(run, error.description))
            return
        }
        let (connected, _, forward, relay) = opened
        let release: () -> Void = {
            if let forward { master.cancel(forward: forward) }
            relay?.terminate(grace: 0.5)
        }
        deliver(.reached(run, connected, release: release))
    }

    private func pause(_ seconds: TimeInterval) {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until && !cancelled { usleep(50_000) }
    }
}
