import Foundation

/// Names for runs shown together (legend, status rows, `replay --summary`). Every default log is
/// `runs/DATE/run.jsonl`, so runs whose names (file names) are the same are named by the shortest suffix of their
/// folder's path that no other of them shares (`0512_1030`, `sgd/0512_1030`); a name in a run's header (its
/// config's `name`) wins when no other run has it too.
public enum RunNames {
    /// What people call a run, from its log's path: its folder for the file names lrtop writes (`runs/rb/run.jsonl`
    /// is `rb`, a sub-run's `subruns/find-lr-40/log.jsonl` is `find-lr-40`), else the file's name without its
    /// extension (`sgd.jsonl` is `sgd`).
    public static func name(ofLog url: URL) -> String {
        let base = url.deletingPathExtension().lastPathComponent
        guard isDefaultLogName(url) else { return base }
        let folder = url.absoluteURL.deletingLastPathComponent().standardizedFileURL.lastPathComponent
        return folder.isEmpty || folder == "/" ? base : folder
    }

    /// `run.jsonl` or `log.jsonl`: a name every run's log has, which says nothing about the run.
    public static func isDefaultLogName(_ url: URL) -> Bool {
        ["run.jsonl", "log.jsonl"].contains(url.lastPathComponent)
    }

    /// The shortest distinct path suffixes of `paths`, without a file name they all share.
    public static func distinct(paths: [String]) -> [String] {
        var parts = paths.map { path -> [String] in
            let c = path.split(separator: "/").map(String.init).filter { $0 != "." }
            return c.isEmpty ? [path] : c
        }
        if parts.count > 1, Set(parts.map { $0.last! }).count == 1, parts.allSatisfy({ $0.count > 1 }) {
            parts = parts.map { Array($0.dropLast()) }
        }
        var names = parts.map { $0.last! }
        let longest = parts.map(\.count).max() ?? 1
        var k = 1
        while Set(names).count < names.count && k < longest {
            k += 1
            let shared = names
            names = names.indices.map { i in
                shared.filter { $0 == shared[i] }.count > 1 ? parts[i].suffix(k).joined(separator: "/") : shared[i]
            }
        }
        return names
    }

    /// The runs, with the names they share made distinct and their header names applied.
    public static func assign(_ runs: [RunData]) -> [RunData] {
        var names = runs.map(\.name)
        let shared = Dictionary(grouping: runs.indices, by: { names[$0] }).values.filter { $0.count > 1 }
        for group in shared {
            let distinctNames = distinct(paths: group.map { runs[$0].source })
            guard Set(distinctNames).count == group.count else { continue }
            for (k, i) in group.enumerated() { names[i] = distinctNames[k] }
        }
        // A sub-run (a fork's branch, a find-lr sweep) carries its parent's config, `name` included: only runs count,
        // so a run that forked keeps its --name.
        let headerNames = runs.map { $0.header?.subrun == nil ? $0.header?.config["name"] ?? "" : "" }
        for (i, h) in headerNames.enumerated() where !h.isEmpty && headerNames.filter({ $0 == h }).count == 1
            && !names.enumerated().contains(where: { $0.offset != i && $0.element == h }) {
            names[i] = h
        }
        return zip(runs, names).map { r, n in
            var r = r
            r.name = n
            return r
        }
    }
}
