import Glibc
import Synchronization

private let pendingInterrupt = Atomic<Int32>(0)

/// SIGINT, SIGTERM and SIGHUP while lrtop waits on ssh (before and after the dashboard, which handles its own): the
/// waits see `pending` and give up, so lrtop can close its SSH connections before it exits.
enum Interrupts {
    static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { s in pendingInterrupt.store(s, ordering: .relaxed) }
        }
    }

    /// The signal that arrived, 0 when none.
    static var pending: Int32 { pendingInterrupt.load(ordering: .relaxed) }
}
