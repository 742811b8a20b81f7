import Foundation

/// `lrtop runs --slurm` for the fleet: this user's Slurm jobs from squeue every 10 s, and for each running one the
/// node of its rank 0 (the registry on a shared home, else the allocation's first node), whose runs the fleet then
/// follows over ssh like any other host's. squeue's failure (not a login node) is one line, as `lrtop ls --slurm`
/// words it.
final class SlurmFleetSource: @unchecked Sendable {
    static let interval: TimeInterval = 10

    enum Event {
        /// The jobs now, and the node of each running job's rank 0.
        case jobs([Slurm.Job], nodes: [String: String])
        case problem(String?)
    }

    private let deliver: @Sendable (Event) -> Void
    private let lock = NSLock()
    private var stopping = false

    init(deliver: @escaping @Sendable (Event) -> Void) { self.deliver = deliver }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "lrtop-fleet-slurm"
        t.start()
    }

    func stop() { lock.withLock { stopping = true } }
    private var cancelled: Bool { lock.withLock { stopping } }

    private func loop() {
        while !cancelled {
            do {
                let jobs = try Slurm.jobs()
                var nodes: [String: String] = [:]
                for job in jobs where job.state == "RUNNING" {
                    if let node = try? RemoteAttach.rank0Node(of: job) { nodes[job.id] = node }
                }
                deliver(.jobs(jobs, nodes: nodes))
                deliver(.problem(nil))
            } catch {
                deliver(.problem(error.description))
            }
            let until = Date().addingTimeInterval(Self.interval)
            while Date() < until && !cancelled { usleep(50_000) }
        }
    }
}
