import Foundation
import Synchronization

/// N trainers on threads, at most `width` at a time: `lrtop compare`'s runs, a sweep's trials, a fork's branches.
/// Job `i` runs `body(i)` on a thread of its own (a trainer's layers recurse deeply: 8 MiB of stack), in order of
/// `i`. `run` trains them all and returns when they have ended; a run's loop that must not block (the branches
/// of a fork, while the run waits at the fork point) calls `fill` each turn instead.
public final class TrainerPool: Sendable {
    public let count: Int
    public let width: Int
    private let name: String
    private let body: @Sendable (Int) -> Void
    private struct State { var next = 0; var running = 0; var closed = false }
    private let state = Mutex(State())
    /// Signalled once by every job that ends.
    private let ended = DispatchSemaphore(value: 0)

    public init(count: Int, width: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        self.count = count; self.width = max(1, width); self.name = name; self.body = body
    }

    /// Starts jobs while fewer than `width` run and any are left; returns at once.
    public func fill() {
        while let i = state.withLock({ s -> Int? in
            guard !s.closed, s.running < width, s.next < count else { return nil }
            s.running += 1
            s.next += 1
            return s.next - 1
        }) {
            let thread = Thread { [self] in
                body(i)
                state.withLock { $0.running -= 1 }
                ended.signal()
            }
            thread.name = "\(name)-\(i + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Trains every job, `width` at a time, and returns when all that started have ended. Once `stop()` says so,
    /// no more jobs start (those running end as their own stop signals make them).
    public func run(stop: () -> Bool = { false }) {
        if stop() { close() } else { fill() }
        while state.withLock({ $0.running > 0 }) {
            ended.wait()
            if stop() { close() } else { fill() }
        }
    }

    /// How many jobs have started.
    public var started: Int { state.withLock { $0.next } }

    /// Every job has started and ended (or the pool was closed and those started have ended).
    public var isDone: Bool { state.withLock { s in s.running == 0 && (s.closed || s.next == count) } }

    /// Starts no more jobs; returns those that never started.
    @discardableResult
    public func close() -> Range<Int> {
        state.withLock { s in
            s.closed = true
            return s.next..<count
        }
    }
}
