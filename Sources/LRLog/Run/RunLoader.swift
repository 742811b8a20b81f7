import Foundation

/// What `RunLoader.load` found: the runs it could read and one line per problem.
public struct LoadResult: Sendable {
    public var runs: [RunData]
    /// Every run's warnings plus problems with whole files ("FILE: not an lrtop run log ...").
    public var warnings: [String]
}

/// Opens whatever the user points at and detects the format:
/// - an lrtop run log (JSON Lines, first line a header record),
/// - a TensorBoard event file (`events.out.tfevents.*`, or TFRecord framing),
/// - a CSV file (Lightning `metrics.csv` or any CSV with a step column),
/// - a folder: every run below it (up to 6 levels): each folder holding event files is one run (its files
///   are read together, as TensorBoard does), each `metrics.csv` one run (named by its folder, e.g.
///   `version_0`), each run log one run. Names are paths relative to the folder opened.
/// A file that cannot be read is reported and the others are still returned; `load` throws only when
/// nothing at all could be read from a single file the user named.
public enum RunLoader {
    public enum FileKind: Sendable, Equatable { case runLog, tensorBoard, csv, unknown }

    public static func load(_ url: URL, mapping: TagMapping? = nil) throws -> LoadResult {
        var isDir: ObjCBool = false
        if let problem = FileProblem.statProblem(url.path, what: "file or folder") { throw problem }
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw LogError("\(url.path): no such file or folder")
        }
        if isDir.boolValue { return loadFolder(url, mapping: mapping) }
        // Reading a FIFO or a device would block forever or never end.
        if let kind = FileProblem.nonRegularKind(url.path) {
            throw LogError("\(url.path) is \(kind): give a run log, a CSV, a TensorBoard event file or a folder of them")
        }
        let run = try loadFile(url, name: detect(url) == .runLog ? RunNames.name(ofLog: url) : url.lastPathComponent,
                               mapping: mapping)
        return LoadResult(runs: [run], warnings: run.warnings)
    }

    /// The format of a file, by name first and then by its first bytes.
    public static func detect(_ url: URL) -> FileKind {
        let name = url.lastPathComponent
        if TensorBoardReader.isEventFileName(name) { return .tensorBoard }
        let ext = url.pathExtension.lowercased()
        if ext == "csv" { return .csv }
        guard let file = try? ChunkedFile(path: url.path, chunkSize: 4096), (try? file.readMore()) == true else { return .unknown }
        let head = UnsafeBufferPointer(start: file.pointer, count: file.available)
        if RunLogReader.looksLikeRunLog(at: url) { return .runLog }
        if head.count >= 12 {
            let lengthCRC = UnsafeRawPointer(head.baseAddress!).loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
            if CRC32C.masked(CRC32C.checksum(head.baseAddress!, 8)) == lengthCRC { return .tensorBoard }
        }
        if ext == "jsonl" || ext == "json" || head.first == UInt8(ascii: "{") { return .runLog }
        if let nl = head.firstIndex(of: 10), head[..<nl].contains(UInt8(ascii: ",")),
           !head.contains(0) { return .csv }
        return .unknown
    }

    /// One file as a run.
    public static func loadFile(_ url: URL, name: String, mapping: TagMapping? = nil) throws -> RunData {
        switch detect(url) {
        case .runLog:
            return try RunLogReader.readRun(at: url, name: name)
        case .tensorBoard:
            return try TensorBoardReader.readRun(files: [url], name: name, source: url.path, mapping: mapping)
        case .csv:
            return try CSVReader.readRun(at: url, name: name, mapping: mapping)
        case .unknown:
            throw LogError("\(url.path): unrecognised format (not an lrtop run log, TensorBoard event file or CSV)")
        }
    }

    static func loadFolder(_ root: URL, mapping: TagMapping?) -> LoadResult {
        var runs: [RunData] = []
        var warnings: [String] = []
        var eventFolders: [(URL, [URL])] = []
        var singles: [URL] = []
        let fm = FileManager.default
        // Real paths already listed: a symlink loop (or two links to one run) lists each run once.
        var seen = Set<String>()
        func firstVisit(_ url: URL) -> Bool {
            guard let real = realpath(url.path, nil) else { return false }
            defer { free(real) }
            return seen.insert(String(cString: real)).inserted
        }

        func visit(_ dir: URL, depth: Int) {
            guard firstVisit(dir) else { return }
            guard let names = try? fm.contentsOfDirectory(atPath: dir.path) else {
                warnings.append("\(dir.path): cannot list folder")
                return
            }
            var events: [URL] = []
            for name in names.sorted() where !name.hasPrefix(".") {
                let url = dir.appendingPathComponent(name)
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }
                if isDir.boolValue {
                    if depth < 6 { visit(url, depth: depth + 1) }
                } else if FileProblem.nonRegularKind(url.path) != nil || !firstVisit(url) {
                    continue
                } else if TensorBoardReader.isEventFileName(name) {
                    events.append(url)
                } else if name == "metrics.csv" || ["jsonl", "csv"].contains(url.pathExtension.lowercased()) {
                    singles.append(url)
                }
            }
            if !events.isEmpty { eventFolders.append((dir, events)) }
        }
        visit(root, depth: 0)

        func relativeName(_ url: URL) -> String {
            let rootPath = root.standardizedFileURL.path
            let path = url.standardizedFileURL.path
            if path == rootPath { return root.lastPathComponent }
            return path.hasPrefix(rootPath + "/") ? String(path.dropFirst(rootPath.count + 1)) : url.lastPathComponent
        }

        for (dir, files) in eventFolders {
            do {
                let run = try TensorBoardReader.readRun(files: files, name: relativeName(dir), source: dir.path, mapping: mapping)
                warnings += run.warnings
                runs.append(run)
            } catch {
                warnings.append("\(error)")
            }
        }
        for file in singles {
            let name = file.lastPathComponent == "metrics.csv" || RunNames.isDefaultLogName(file)
                ? relativeName(file.deletingLastPathComponent())
                : relativeName(file.deletingPathExtension())
            do {
                let run = try loadFile(file, name: name, mapping: mapping)
                warnings += run.warnings
                runs.append(run)
            } catch {
                warnings.append("\(error)")
            }
        }
        // A run's find-lr sweeps (RUN_DIR/subruns/find-lr-*) are drawn by the find-lr panel, as loss against LR, not
        // overlaid as runs; a folder holding nothing else still shows them.
        let withoutSweeps = runs.filter { $0.header?.subrun?.kind != .findLR }
        if !withoutSweeps.isEmpty { runs = withoutSweeps }
        if runs.isEmpty && warnings.isEmpty {
            warnings.append("\(root.path): no runs found (no run logs, event files or metrics CSV files)")
        }
        runs.sort { $0.name < $1.name }
        return LoadResult(runs: runs, warnings: warnings)
    }
}
