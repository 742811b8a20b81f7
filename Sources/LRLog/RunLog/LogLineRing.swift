import Synchronization

/// The newest lines of a run log, numbered as in the file, for a control socket that pushes records to viewers
/// (docs/bridge.md "Records, pushed"): the writer copies each line here as it writes it (the same bytes the file
/// gets), the socket's thread reads them by number. Bounded: `capacity` lines in slots that keep their storage, so
/// writing a line allocates nothing once the slots have grown to a line's size, and memory does not grow with the
/// run. A viewer behind by more than `capacity` lines is told to read the rest from the file (a gap).
public final class LogLineRing: Sendable {
    private struct State {
        var slots: [[UInt8]]
        /// The number (in the file) of the next line written.
        var next = 0
    }
    private let state: Mutex<State>
    public let capacity: Int

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        state = Mutex(State(slots: Array(repeating: [], count: max(1, capacity))))
    }

    /// The log already holds `count` lines (a resumed run continues its log): the next line written is number `count`.
    public func startAt(line count: Int) {
        state.withLock { $0.next = max(0, count) }
    }

    /// Complete lines so far (the file's line count once the writer flushed).
    public var lineCount: Int { state.withLock { $0.next } }

    /// Copies one line (without its newline).
    public func append(_ line: ArraySlice<UInt8>) {
        state.withLock { s in
            let i = s.next % capacity
            s.slots[i].removeAll(keepingCapacity: true)
            s.slots[i].append(contentsOf: line)
            s.next += 1
        }
    }

    /// The lines from number `first` on that are still held, at most `limit`, with the number of the first one
    /// returned (greater than `first` when older lines were overwritten: those are only in the file now).
    public func lines(from first: Int, limit: Int = 256) -> (start: Int, lines: [[UInt8]]) {
        state.withLock { s in
            let start = max(first, s.next - capacity, 0)
            let end = min(s.next, start + max(0, limit))
            guard start < end else { return (min(start, s.next), []) }
            return (start, (start..<end).map { s.slots[$0 % capacity] })
        }
    }
}
