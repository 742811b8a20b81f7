import LRLog

/// The attached run's records in the order of its log's lines, each exactly once, joined from two sources: the log
/// file (its history, and any lines the stream skipped) and the records the run pushes over its socket, each
/// numbered by its line (docs/bridge.md "Records, pushed"). A record is handed on only when every line before it has
/// been: a pushed record that arrives ahead waits here (bounded) until the file supplies the lines before it. Steps
/// that repeat after a rollback are distinct lines, so they keep their order too.
public struct RecordJoin {
    /// A record handed on: its line in the log, and whether it came pushed over the socket or read from the file.
    public struct Arrival: Sendable {
        public var line: Int
        public var record: RunRecord
        public var pushed: Bool
    }

    /// The next line due: every line before it has been handed on (or was unreadable in the file).
    public private(set) var next = 0
    /// The highest line number known to exist, plus one: lines from `next` up to it are missing until read.
    public private(set) var known = 0
    /// Pushed records waiting for the lines before them.
    private var ahead: [Int: RunRecord] = [:]
    /// How many pushed records may wait; those beyond are read from the file when their turn comes.
    public static let maxAhead = 100_000

    public init() {}

    /// Lines are missing between what was handed on and what is known to exist: read the file.
    public var hasHole: Bool { next < known }
    public var waiting: Int { ahead.count }

    /// A record the run pushed; returns the records now due, in line order.
    public mutating func takePushed(line: Int, _ record: RunRecord) -> [Arrival] {
        known = max(known, line + 1)
        if line < next { return [] }  // had it from the file already
        if line == next {
            next += 1
            return [Arrival(line: line, record: record, pushed: true)] + drainAhead()
        }
        if ahead.count < Self.maxAhead { ahead[line] = record }
        return []
    }

    /// Lines `from ..< to` are only in the file: they count as missing until read from it.
    public mutating func takeGap(to: Int) { known = max(known, to) }

    /// Records read from the file with their line numbers, in order, and the number of complete lines read: a line
    /// below it with no record (malformed) is skipped. Returns the records now due, in line order.
    public mutating func takeFile(_ numbered: [(line: Int, record: RunRecord)], linesRead: Int) -> [Arrival] {
        var out: [Arrival] = []
        for (line, record) in numbered where line >= next {
            skip(to: line, into: &out)
            ahead.removeValue(forKey: line)
            out.append(Arrival(line: line, record: record, pushed: false))
            next = line + 1
        }
        skip(to: linesRead, into: &out)
        known = max(known, linesRead)
        return out + drainAhead()
    }

    /// Moves `next` up to `line`: lines the file holds no record for, unless a pushed copy is here.
    private mutating func skip(to line: Int, into out: inout [Arrival]) {
        while next < line {
            if let r = ahead.removeValue(forKey: next) { out.append(Arrival(line: next, record: r, pushed: true)) }
            next += 1
        }
    }

    private mutating func drainAhead() -> [Arrival] {
        var out: [Arrival] = []
        while let r = ahead.removeValue(forKey: next) {
            out.append(Arrival(line: next, record: r, pushed: true))
            next += 1
        }
        return out
    }
}
