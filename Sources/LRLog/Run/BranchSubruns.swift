import Foundation

/// The "what if" branches of a run (`fork`): sub-run logs at `LOG_FOLDER/subruns/fork-STEP-K[-N]/log.jsonl`
/// whose header says `"subrun":{"kind":"branch",...}`. The live dashboard follows them, replay draws them over
/// their parent from their fork step.
public enum BranchSubruns {
    public struct Found: Equatable, Sendable {
        public var log: URL
        /// The folder's name, e.g. `fork-300-2`.
        public var folder: String
        public var subrun: SubRun
        /// K of `fork-STEP-K`: the number `adopt K` takes.
        public var number: Int
        /// "b2@300 lr 1e-3": legend and table name.
        public var displayName: String { Self.displayName(number: number, subrun: subrun) }

        public static func displayName(number: Int, subrun: SubRun) -> String {
            "b\(number)@\(subrun.fromStep ?? 0) \(subrun.label)"
        }
    }

    /// K of a display name "bK@STEP label".
    public static func number(displayName: String) -> Int? {
        guard displayName.hasPrefix("b"), let at = displayName.firstIndex(of: "@") else { return nil }
        return Int(displayName[displayName.index(after: displayName.startIndex)..<at])
    }

    /// The branch sub-runs beside a run log, in fork order (fork step, then the order of the forks at one step,
    /// then branch number). Logs that cannot be read or are not branches are left out.
    public static func find(besideLog log: URL) -> [Found] {
        let dir = log.deletingLastPathComponent().appendingPathComponent("subruns")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var found: [(key: [Int], item: Found)] = []
        for name in names {
            guard let key = sortKey(folder: name) else { continue }
            let url = dir.appendingPathComponent(name).appendingPathComponent("log.jsonl")
            guard let subrun = header(of: url)?.subrun, subrun.kind == .branch else { continue }
            found.append((key, Found(log: url, folder: name, subrun: subrun, number: key[2])))
        }
        return found.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.item)
    }

    /// K of a branch's folder `fork-STEP-K[-N]`.
    public static func number(folder: String) -> Int? { sortKey(folder: folder)?[2] }

    /// `fork-300-2-3` → [300, 3, 2]: step, which fork at that step (1 when no suffix), branch number.
    static func sortKey(folder: String) -> [Int]? {
        let parts = folder.split(separator: "-")
        guard parts.count == 3 || parts.count == 4, parts[0] == "fork",
              let step = Int(parts[1]), let k = Int(parts[2]) else { return nil }
        let n = parts.count == 4 ? Int(parts[3]) : 1
        return n.map { [step, $0, k] }
    }

    /// The header record of a run log (its first line), or nil.
    public static func header(of url: URL) -> RunHeader? {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64 << 10)) ?? Data()
        guard let newline = head.firstIndex(of: 10),
              let record = try? RunLogLine.decode(String(decoding: head[..<newline], as: UTF8.self)),
              case .header(let h) = record else { return nil }
        return h
    }
}
