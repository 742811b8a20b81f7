import Foundation

/// What a host says about this user's runs there, gathered by one POSIX shell script (`script`: nothing of lrtop's
/// needs to be installed there) run over SSH, or locally: the run registry's entries (docs/registry.md), the live
/// sockets in the bridge's socket folders (with the log each process holds open, and its Slurm job), and, when a
/// path was named, the first and last lines of that run's log. Nothing in it is trusted: every line and field is
/// checked, and a line that does not read is skipped.
public struct RemoteSurvey: Equatable, Sendable {
    /// A run a host serves a socket for.
    public struct Run: Equatable, Sendable {
        /// The socket's path there.
        public var socket: String
        public var pid: Int
        /// The run's log there, when known (its registry entry, or the file its process holds open).
        public var log: String?
        public var name: String
        /// "plain", "lightning", "hf", "lrtop", or nil when unknown.
        public var kind: String?
        public var slurmJob: String?
        public var rank: Int?
        public var worldSize: Int?
        /// The registry entry's start time (ISO 8601), when it has one.
        public var start: String?
        /// The last step record in its log: step and loss.
        public var step: Int?
        public var loss: Double?
        /// When its log was last written (the host's clock, Unix seconds).
        public var modified: Double?

        public var runDir: String? {
            log.map { ($0 as NSString).deletingLastPathComponent }
        }
    }

    /// A run log named by path (the argument, or the runs in the folder it names).
    public struct Log: Equatable, Sendable {
        public var path: String
        public var size: Int
        /// The socket its header names, nil when none (a log of lrtop's own trainer before #25, or not a log).
        public var socket: String?
        public var isRunLog: Bool
        /// Its end record's reason, when its last line is one.
        public var endReason: String?
        /// The header's start time.
        public var start: String?
        public var slurmJob: String?

        public var runDir: String { (path as NSString).deletingLastPathComponent }
        public var name: String {
            (path as NSString).lastPathComponent == "run.jsonl" ? (runDir as NSString).lastPathComponent
                : (path as NSString).lastPathComponent
        }
    }

    /// What the named path is there.
    public enum Target: Equatable, Sendable {
        case none
        case socket(String)
        /// A run log, or a folder of runs (`logs`).
        case logs
        case missing(String)
    }

    /// The host's own name, up to the first dot.
    public var hostname = ""
    /// The host's clock (Unix seconds) when it answered.
    public var now: Double = 0
    public var home = ""
    public var registry = ""
    /// The socket folders that exist there.
    public var folders: [String] = []
    /// Live runs, newest first.
    public var runs: [Run] = []
    public var logs: [Log] = []
    public var target: Target = .none
    /// Registry entries skipped (stale heartbeat, dead process, malformed), for the listing's footnote.
    public var skipped = 0
    /// Every valid, fresh registry entry, of any host (a shared home holds every node's).
    public var entries: [RegistryEntry] = []

    public init() {}

    /// Every field at most this long; a line at most `maxLine`.
    static let maxField = 4096
    static let maxLine = 140_000
    /// A registry entry's size limit (docs/registry.md).
    public static let maxEntryBytes = 16_384
    /// An entry whose heartbeat is older than this is stale.
    public static let staleAfter: Double = 60

    /// Reads the script's output.
    public static func parse(_ output: [UInt8]) -> RemoteSurvey {
        var survey = RemoteSurvey()
        var entries: [(file: String, json: Substring)] = []
        var sockets: [(path: String, pid: Int, log: String?, job: String?, modified: Double?, last: Substring)] = []
        for rawLine in output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard rawLine.count <= maxLine else { continue }
            let line = String(decoding: rawLine, as: UTF8.self)
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard let tag = fields.first else { continue }
            func field(_ i: Int) -> String? {
                guard i < fields.count, fields[i].utf8.count <= maxField else { return nil }
                return String(fields[i])
            }
            switch tag {
            case "host": survey.hostname = field(1).map(shortName) ?? ""
            case "now": survey.now = field(1).flatMap(Double.init) ?? 0
            case "home": survey.home = field(1) ?? ""
            case "registry": survey.registry = field(1) ?? ""
            case "folder": if let f = field(1) { survey.folders.append(f) }
            // An entry of that host whose process lives but whose socket is gone (a run that closed it, a folder
            // cleaned): nothing to reach, so not listed.
            case "gone": survey.skipped += 1
            case "entry":
                if fields.count >= 3, let file = field(1), fields[2].utf8.count <= maxEntryBytes { entries.append((file, fields[2])) }
                else { survey.skipped += 1 }
            case "socket":
                guard let path = field(1), let pid = field(2).flatMap(Int.init), pid > 0 else { continue }
                let log = field(3).flatMap { $0.isEmpty ? nil : $0 }
                let job = field(4).flatMap { $0.isEmpty ? nil : $0 }
                sockets.append((path, pid, log, job, field(5).flatMap(Double.init), fields.count > 6 ? fields[6] : ""))
            case "log":
                guard let path = field(1), let size = field(2).flatMap(Int.init) else { continue }
                survey.logs.append(readLog(path: path, size: size, header: fields.count > 3 ? fields[3] : "",
                                           last: fields.count > 4 ? fields[4] : ""))
            case "target":
                switch field(1) {
                case "socket": survey.target = field(2).map(Target.socket) ?? .none
                case "logs": survey.target = .logs
                case "missing": survey.target = .missing(field(2) ?? "")
                default: break
                }
            default: continue
            }
        }
        // Sockets first (they are live: the script saw the process), then the registry adds what it knows.
        var runs: [Run] = sockets.map { s in
            var run = Run(socket: s.path, pid: s.pid, log: s.log, name: "", slurmJob: s.job, modified: s.modified)
            run.name = s.log.map { nameOf(log: $0) } ?? "pid \(s.pid)"
            readLast(s.last, into: &run)
            return run
        }
        for (file, json) in entries {
            guard let entry = RegistryEntry.parse(Array(json.utf8)) else { survey.skipped += 1; continue }
            if survey.now > 0, let beat = entry.heartbeat, survey.now - beat > staleAfter { survey.skipped += 1; continue }
            survey.entries.append(entry)
            if let i = runs.firstIndex(where: { $0.socket == entry.socket }) {
                runs[i].merge(entry)
            } else if entry.host == survey.hostname {
                // On this host, an entry whose socket is not among the live ones is stale (a dead process, a
                // closed socket) when its socket sits in a folder the script looked in.
                if survey.folders.contains((entry.socket as NSString).deletingLastPathComponent) {
                    survey.skipped += 1
                    continue
                }
                var run = Run(socket: entry.socket, pid: entry.pid, log: nil, name: "")
                run.merge(entry)
                runs.append(run)
            }
            _ = file
        }
        survey.runs = runs.sorted { ($0.modified ?? 0, $0.start ?? "") > ($1.modified ?? 0, $1.start ?? "") }
        return survey
    }

    /// `gpu7.cluster.org` -> `gpu7`.
    static func shortName(_ host: String) -> String {
        String(host.split(separator: ".", maxSplits: 1).first ?? Substring(host))
    }

    /// A run's name from its log's path: its folder, or the file's name when it is not run.jsonl.
    static func nameOf(log: String) -> String {
        let file = (log as NSString).lastPathComponent
        return file == "run.jsonl" ? ((log as NSString).deletingLastPathComponent as NSString).lastPathComponent : file
    }

    static func object(_ text: Substring) -> [String: Any]? {
        guard !text.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    static func readLast(_ text: Substring, into run: inout Run) {
        // The last complete record: the script sends the last two lines, the newer possibly half written.
        for part in text.split(separator: "\u{1f}").reversed() {
            guard let o = object(part) else { continue }
            if let step = o["step"] as? Int, step >= 0 { run.step = step }
            if let loss = o["loss"] as? Double { run.loss = loss }
            if o["step"] != nil { return }
        }
    }

    static func readLog(path: String, size: Int, header: Substring, last: Substring) -> Log {
        var log = Log(path: path, size: size, socket: nil, isRunLog: false)
        if let h = object(header), h["type"] as? String == "header" {
            log.isRunLog = true
            if let s = h["socket"] as? String, !s.isEmpty, s.utf8.count < 4096 { log.socket = s }
            log.start = h["start_time"] as? String
            if let slurm = h["slurm"] as? [String: Any], let job = slurm["job_id"] as? String { log.slurmJob = job }
        }
        for part in last.split(separator: "\u{1f}").reversed() {
            if let o = object(part), o["type"] as? String == "end" {
                log.endReason = (o["reason"] as? String) ?? "ended"
                break
            }
        }
        return log
    }
}

extension RemoteSurvey.Run {
    mutating func merge(_ entry: RegistryEntry) {
        if let l = entry.log { log = l }
        if let n = entry.name { name = n } else if name.isEmpty || name.hasPrefix("pid ") { name = log.map(RemoteSurvey.nameOf) ?? "pid \(pid)" }
        kind = entry.kind ?? kind
        slurmJob = entry.slurm?.jobID ?? slurmJob
        rank = entry.rank ?? rank
        worldSize = entry.worldSize ?? worldSize
        start = entry.start ?? start
        if modified == nil { modified = entry.heartbeat }
    }
}

extension RemoteSurvey {
    /// The survey of this machine (the same script, run by /bin/sh here).
    public static func local(spec: String = "") throws(RemoteError) -> RemoteSurvey {
        let r = try SSHMaster.run(["/bin/sh", "-s", "--", spec], input: Array(script.utf8), timeout: 30)
        return parse(r.stdout)
    }

    /// The survey of the host `master` reaches.
    public static func of(_ master: SSHMaster, spec: String = "", cancelled: @escaping () -> Bool = { false })
        throws(RemoteError) -> RemoteSurvey {
        let r = try master.run(script: script, arguments: [spec], timeout: 30, cancelled: cancelled)
        guard r.status == 0 else {
            let said = r.errorText.split(whereSeparator: \.isNewline).last.map(String.init) ?? "status \(r.status)"
            throw RemoteError(.other, "looking for runs on \(master.host) failed: \(said)")
        }
        return parse(r.stdout)
    }

    /// The survey script: POSIX sh and the commands every Linux has (id, uname, date, kill, head, tail, tr, sed, ls,
    /// wc). $1: a path to describe (a run folder, a folder of runs, a run.jsonl, a socket; `~/` is the home), or "".
    /// Output: one tab-separated line per fact (see `parse`); it removes registry entries of this host whose process
    /// is gone, as every registry reader does.
    public static let script = #"""
    umask 077
    uid=$(id -u)
    me=$(uname -n)
    printf 'host\t%s\n' "$me"
    me=${me%%.*}
    printf 'now\t%s\n' "$(date +%s)"
    printf 'home\t%s\n' "$HOME"
    us=$(printf '\037')
    lines() { tail -n 2 "$1" 2>/dev/null | head -c 131072 | tr -d '\r\t' | tr '\n' "$us"; }
    reg="${XDG_STATE_HOME:-$HOME/.local/state}/lrtop/runs"
    printf 'registry\t%s\n' "$reg"
    if [ -d "$reg" ] && [ ! -L "$reg" ]; then
      for f in "$reg"/*.json; do
        [ -f "$f" ] && [ ! -L "$f" ] || continue
        b=${f##*/}; b=${b%.json}; r=${b%-*}; pid=${r##*-}; h=${r%-*}
        case $pid in ''|*[!0-9]*) ;; *)
          if [ "$h" = "$me" ] && ! kill -0 "$pid" 2>/dev/null; then rm -f "$f"; continue; fi;;
        esac
        if [ "$h" = "$me" ]; then
          s=$(head -c 16385 "$f" | tr -d '\n\r' | sed -n 's/.*"socket" *: *"\([^"]*\)".*/\1/p' | tr -d '\\')
          if [ -n "$s" ] && [ ! -S "$s" ]; then printf 'gone\t%s\n' "$f"; continue; fi
        fi
        printf 'entry\t%s\t' "$f"; head -c 16385 "$f" | tr -d '\n\r\t'; printf '\n'
      done
    fi
    seen=" "
    for b in "${XDG_RUNTIME_DIR:-}" "/run/user/$uid" "${TMPDIR:-/tmp}" "/tmp"; do
      [ -n "$b" ] || continue
      for d in "$b/lrtop-$uid" "$b/lrtop-$uid"-*; do
        [ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ] || continue
        case $seen in *" $d "*) continue;; esac
        seen="$seen$d "
        printf 'folder\t%s\n' "$d"
        for s in "$d"/*.sock; do
          [ -S "$s" ] || continue
          n=${s##*/}; pid=${n%%-*}
          case $pid in ''|*[!0-9]*) continue;; esac
          kill -0 "$pid" 2>/dev/null || continue
          log=""; job=""; mod=""; last=""
          if [ -d "/proc/$pid/fd" ]; then
            log=$(ls -l "/proc/$pid/fd/" 2>/dev/null | sed -n 's/.* -> \(\/.*\/run\.jsonl\)$/\1/p' | head -n 1)
            job=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^SLURM_JOB_ID=//p' | head -n 1)
          fi
          if [ -n "$log" ] && [ -f "$log" ]; then
            mod=$(date -r "$log" +%s 2>/dev/null)
            last=$(lines "$log")
          fi
          printf 'socket\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$pid" "$log" "$job" "$mod" "$last"
        done
      done
    done
    describe() {
      printf 'log\t%s\t%s\t' "$1" "$(wc -c < "$1" | tr -d ' ')"
      head -n 1 "$1" | head -c 131072 | tr -d '\r\t\n'
      printf '\t%s\n' "$(lines "$1")"
    }
    p=$1
    case $p in '~') p=$HOME;; '~/'*) p="$HOME/${p#??}";; esac
    if [ -n "$p" ]; then
      case $p in /*) ;; *) p="$HOME/$p";; esac
      if [ -S "$p" ]; then printf 'target\tsocket\t%s\n' "$p"
      elif [ -d "$p" ]; then
        printf 'target\tlogs\n'
        if [ -f "$p/run.jsonl" ]; then describe "$p/run.jsonl"
        else for l in "$p"/*/run.jsonl; do [ -f "$l" ] && describe "$l"; done; fi
      elif [ -f "$p" ]; then printf 'target\tlogs\n'; describe "$p"
      else printf 'target\tmissing\t%s\n' "$p"
      fi
    fi
    exit 0
    """#
}
