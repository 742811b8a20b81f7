import Foundation
import LRCommand
import LRLog

/// A run log that another process is still writing (`lrtop watch`), followed like `tail -f`: every
/// `pollInterval` seconds the new complete lines are read and handed to the dashboard. Before the file exists it
/// waits for it; when the end record arrives the state shows how the run ended. Read-only: it cannot steer the
/// process that writes the log.
public final class WatchSource: RunSource {
    public let isLive = false
    public let url: URL
    public var runFolder: URL? { url.deletingLastPathComponent() }
    /// Seconds between reads of the file.
    public var pollInterval: Double
    /// Monotonic seconds; tests replace it.
    public var clock: () -> Double = ReplaySource.monotonicSeconds
    /// After this many seconds without a new record (and no end record), the status says so.
    public var staleAfter: Double = 10

    private let follower: RunLogFollower
    private var lastPoll: Double?
    private var lastRecordAt: Double?
    private var current: LiveStatus
    private var failed = false
    private var warningCount = 0
    /// The log's end record, once it has arrived.
    public private(set) var end: EndRecord?
    private var ended: Bool { end != nil }
    private var groupNames: [String] = []
    /// The run's config from its log header, for the optimizer line.
    public private(set) var config: [String: String]? = nil

    public init(url: URL, pollInterval: Double = 0.15, title: String? = nil) {
        self.url = url
        self.pollInterval = pollInterval
        follower = RunLogFollower(url: url)
        current = LiveStatus(title: title ?? RunNames.name(ofLog: url), state: .starting,
                             message: "waiting for \(url.lastPathComponent) to appear")
        current.logPath = url.path
    }

    /// Every warning met so far ("file:line: what").
    public var warnings: [String] { follower.warnings }

    public func drain() -> [RunRecord] {
        let now = clock()
        if let last = lastPoll, now - last < pollInterval { return [] }
        lastPoll = now
        guard let records = read({ try $0.poll() }) else { return [] }
        if records.isEmpty {
            if current.state == .starting, FileManager.default.fileExists(atPath: url.path) {
                current.message = "waiting for the first record"
            } else if current.state == .running, let t = lastRecordAt, now - t > staleAfter {
                current.message = "no new records for " + Format.duration(now - t)
            }
        } else {
            take(records)
        }
        return records
    }

    /// Reads the file's new lines now, each record with its line number, and how many complete lines have been read
    /// (nil once the file has proved not to be a run log): for a reader that joins them with records from elsewhere
    /// (`lrtop attach`: the run's pushed records) and hands the result to `take`.
    public func readNumbered() -> (records: [(line: Int, record: RunRecord)], linesRead: Int)? {
        read { try $0.pollNumbered() }
    }

    /// Records taken from elsewhere, applied to the status as if read here.
    public func take(_ records: [RunRecord]) {
        guard !records.isEmpty else { return }
        lastRecordAt = clock()
        for r in records { apply(r) }
    }

    private func read<T>(_ poll: (RunLogFollower) throws -> T) -> T? {
        guard !failed else { return nil }
        let result: T
        do {
            result = try poll(follower)
        } catch {
            failed = true
            current.state = .failed
            // The title names the file already.
            let text = "\(error)"
            current.message = text.hasPrefix(url.path + ": ") ? String(text.dropFirst(url.path.count + 2)) : text
            return nil
        }
        let w = follower.warnings
        if w.count > warningCount {
            warningCount = w.count
            current.details.removeAll { $0.key == "warning" }
            current.details.append(LiveStatus.Detail("warning", w[w.count - 1] + (w.count > 1 ? " (+\(w.count - 1))" : "")))
        }
        return result
    }

    public func status() -> LiveStatus { current }

    public func send(_ command: Command, text: String) throws(CommandError) -> Int {
        throw CommandError("watching a log is read-only: '\(text)' can only steer a run trained in this lrtop")
    }

    private func apply(_ record: RunRecord) {
        switch record {
        case .header(let h):
            // The run's --name, when it has one, is what people call it.
            var s = ReplaySource.headerStatus(h, title: h.subrun == nil ? h.config["name"] ?? current.title : current.title)
            s.details = current.details
            s.state = ended ? current.state : .running
            s.message = ended ? current.message : nil
            groupNames = h.groups
            config = h.config
            s.logPath = url.path
            current = s
        case .step(let st):
            if current.state == .starting { current.state = .running }
            if !ended { current.message = nil }
            current.step = st.step
            current.epoch = st.epoch
            current.groups = st.lrs.enumerated().map { g, lr in
                LiveStatus.Group(name: groupNames.indices.contains(g) ? groupNames[g] : "g\(g + 1)", lr: lr)
            }
            if let text = ReplaySource.optimizerText(config, inForce: st.lrs.first) { current.optimizer = text }
        case .event(let e):
            if let base = e.result?.epochBase, (0...1).contains(base) { current.epochBase = base }
        case .eval, .metrics:
            break
        case .end(let e):
            end = e
            current.state = RunPhase(ended: e.reason)
            // The state word says how it ended (`■ stopped`); the message says why, when the run said.
            current.message = e.message
        }
    }
}
