import LRTUI

/// How an attached run's socket is reached when it is not simply a local path: over SSH (`lrtop attach HOST:RUN`),
/// where the link can drop and come back while the run goes on. `AttachSource` asks it every frame, on the UI thread;
/// it never blocks (the work is done on its own thread).
public protocol AttachTransport: AnyObject {
    /// Looks at the connection in use; returns a new one once the link has been re-established after it closed.
    func poll(_ current: BridgeConnection) -> BridgeConnection?
    /// True while the link is being re-established: a closed connection is not (yet) a lost run.
    var isReconnecting: Bool { get }
    /// One line for the header: where the run is and how it is reached, or what the reconnection is doing.
    var note: String? { get }
    /// Lines for the status panel (the link, the run's log where it really is).
    var details: [LiveStatus.Detail] { get }
    /// Ends the link: no process or socket file of it is left.
    func close()
}
