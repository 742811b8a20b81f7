/// A column of the runs table: its title, how it is written and sorted, and how much it matters when the terminal
/// is narrow (columns with a higher `priority` number are dropped first).
public enum RunsColumn: Int, CaseIterable, Sendable {
    case name, kind, state, step, epoch, lr, loss, trend, val, stepsPerSecond, samplesPerSecond, eta, gpu, age, host

    public var title: String {
        switch self {
        case .name: return "name"
        case .kind: return "kind"
        case .state: return "state"
        case .step: return "step"
        case .epoch: return "ep"
        case .lr: return "lr"
        case .loss: return "loss"
        case .trend: return "trend"
        case .val: return "val"
        case .stepsPerSecond: return "it/s"
        case .samplesPerSecond: return "smp/s"
        case .eta: return "eta"
        case .gpu: return "gpu"
        case .age: return "age"
        case .host: return "host"
        }
    }

    /// 0 is kept longest: an 80-column terminal shows what a person scans for first (which run, is it moving,
    /// how far, its loss and LR, is it stuck).
    public var priority: Int {
        switch self {
        case .name: return 0
        case .state: return 1
        case .step: return 2
        case .loss: return 3
        case .lr: return 4
        case .age: return 5
        case .eta: return 6
        case .trend: return 7
        case .kind: return 8
        case .host: return 9
        case .val: return 10
        case .stepsPerSecond: return 11
        case .epoch: return 12
        case .samplesPerSecond: return 13
        case .gpu: return 14
        }
    }

    /// Numbers are right-aligned so their digits line up.
    public var rightAligned: Bool {
        switch self {
        case .name, .kind, .state, .trend, .lr, .host, .val: return false
        default: return true
        }
    }

    /// The widest a text column may grow (the name column takes what is left, within these bounds).
    var maxWidth: Int {
        switch self {
        case .name: return 28
        case .state: return 22
        case .lr: return 16
        case .host: return 12
        case .trend: return RunsColumn.trendWidth
        case .step: return 18  // "123456/200000 62%"
        default: return 14
        }
    }

    static let trendWidth = 6

    /// The first sort on a column puts these on top: the highest step, steps/s, age (the stuck runs), ...
    var descendingFirst: Bool {
        switch self {
        case .step, .epoch, .val, .stepsPerSecond, .samplesPerSecond, .gpu, .age: return true
        default: return false
        }
    }

    /// The cell's text for a row (the trend column draws a sparkline instead).
    public func text(_ row: RunsRow) -> String {
        if row.rank != nil { return rankText(row) }
        switch self {
        case .name: return row.name
        case .kind: return row.kind + ((row.worldSize ?? 1) > 1 ? "×\(row.worldSize!)" : "")
        case .state:
            if row.isStalled { return "stalled" }
            guard let r = row.reason, !r.isEmpty else { return row.state }
            // An ended row is dimmed: its end reason alone says how it ended ("completed", "SIGTERM", "process gone").
            if row.ended { return r }
            return row.state + ": " + r
        case .step:
            guard let s = row.step else { return "—" }
            guard let t = row.totalSteps, t > 0 else { return Self.count(s) }
            if row.ended { return Self.count(s) + "/" + Self.count(t) }
            return Self.count(s) + "/" + Self.count(t) + " " + Format.fixed(100 * Double(s) / Double(t), 0) + "%"
        case .epoch: return row.epoch.map(String.init) ?? "—"
        case .lr: return row.lrs.isEmpty ? "—" : row.lrs.map(Self.lr).joined(separator: ",")
        case .loss: return row.loss.map(Format.metric) ?? "—"
        case .trend: return ""
        case .val:
            let parts = [row.valLoss.map(Format.metric), row.valAcc.map { Format.percent($0) }].compactMap { $0 }
            return parts.isEmpty ? "—" : parts.joined(separator: " ")
        case .stepsPerSecond: return row.stepsPerSecond.map(Format.compact) ?? "—"
        case .samplesPerSecond: return row.samplesPerSecond.map(Format.compact) ?? "—"
        case .eta: return row.ended ? "" : row.etaSeconds.map(Format.duration) ?? "—"
        case .gpu:
            guard let peak = row.gpuPeak else { return "—" }
            return Self.gib(peak) + (row.gpuTotal.map { "/" + Self.gib($0) } ?? "") + "G"
        case .age:
            guard let a = row.stepAge, !row.ended else { return row.ended ? "" : "—" }
            return Self.age(a) + (row.isStalled ? " ⚠" : "")
        case .host: return row.host
        }
    }

    /// A rank row of an expanded job: its own step, step time and age; the rest is the job's.
    func rankText(_ row: RunsRow) -> String {
        switch self {
        case .name: return " └ rank \(row.rank!)"
        case .state: return (row.isStalled ? "stalled" : row.state) + (row.reason.map { " " + $0 } ?? "")
        case .step: return row.step.map(Self.count) ?? "—"
        case .age: return row.stepAge.map { Self.age($0) + (row.isStalled ? " ⚠" : "") } ?? "—"
        case .host: return row.host
        // A rank's step time where the job shows its kind (the summary line under the table names it).
        case .kind: return row.stepTime.map(Self.stepTime) ?? ""
        default: return ""
        }
    }

    /// 950, 12345, then 1.2M: a step count stays exact while it fits.
    static func count(_ n: Int) -> String { n < 1_000_000 ? String(n) : Format.compact(Double(n)) }

    /// Two significant digits, short exponent: 3e-4, 2.5e-3, 0.1.
    static func lr(_ v: Double) -> String {
        guard v.isFinite, v != 0 else { return Format.lr(v) }
        if abs(v) >= 0.01 && abs(v) < 1000 { return Format.trimZeros(Format.significant(v, 2)) }
        let s = Format.sci(v, 1)
        return s.replacing(".0e", with: "e")
    }

    /// GiB, a tenth below 10: "7.5", "12", "80".
    static func gib(_ bytes: Double) -> String {
        let g = bytes / 1_073_741_824
        return g < 10 ? Format.trimZeros(Format.fixed(g, 1)) : Format.fixed(g, 0)
    }

    /// Seconds below a minute with a tenth while short ("0.4s", "12s"), then as durations.
    static func age(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "—" }
        return s < 10 ? Format.fixed(s, 1) + "s" : Format.duration(s)
    }

    /// Seconds per step, two significant digits: "0.20s", "1.3s".
    static func stepTime(_ s: Double) -> String { Format.significant(s, 2) + "s" }

    /// What the column sorts by: a number, else text; nil sorts last either way.
    func sortKey(_ row: RunsRow) -> SortKey? {
        switch self {
        case .name: return .text(row.name)
        case .kind: return .text(text(row))
        case .state: return .text(text(row))
        case .host: return .text(row.host)
        case .step: return row.step.map { .number(Double($0)) }
        case .epoch: return row.epoch.map { .number(Double($0)) }
        case .lr: return row.lrs.first.map(SortKey.number)
        case .loss, .trend: return row.loss.map(SortKey.number)
        case .val: return (row.valLoss ?? row.valAcc).map(SortKey.number)
        case .stepsPerSecond: return row.stepsPerSecond.map(SortKey.number)
        case .samplesPerSecond: return row.samplesPerSecond.map(SortKey.number)
        case .eta: return row.etaSeconds.map(SortKey.number)
        case .gpu: return row.gpuPeak.map(SortKey.number)
        case .age: return row.stepAge.map(SortKey.number)
        }
    }

    enum SortKey: Comparable {
        case number(Double)
        case text(String)
    }
}
