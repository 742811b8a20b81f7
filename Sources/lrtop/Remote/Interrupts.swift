import Glibc
import Synchronization

private let pendingInterrupt = Atomic<Int32>(0)

/// SIGINT, SIGTERM and SIGHUP while lrtop waits on ssh (before and after the dashboard, which handles its own): the
/// waits see `pending` and give up, so lrtop can close its SSH connections before it exits.
enum Interrupts {
    static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // Without SA_RESTART: a read waiting for the person's pick returns, so Ctrl-C there works too.
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { s in pendingInterrupt.store(s, ordering: .relaxed) }
            action.sa_flags = 0
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, nil)
        }
    }

    /// The signal that arrived, 0 when none.
    static var pending: Int32 { pendingInterrupt.load(ordering: .relaxed) }
}
