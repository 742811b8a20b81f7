import Foundation
import Glibc

/// `lrtop replay HOST:RUN_DIR`: the run's logs streamed over the host's master connection into a private local
/// folder (no sshfs, nothing installed there): a run folder's run.jsonl and its sub-runs, TensorBoard event files
/// and CSVs, never its checkpoints. Each file is framed by its size, so a log still being written is copied up to
/// the size it had when the copy began. Paths from the host are checked before anything is created here.
public enum RemoteFetch {
    /// Copies what `path` names there into `folder`; returns the local path to replay (the copy of the folder, or
    /// of the file).
    public static func fetch(_ path: String, from master: SSHMaster, into folder: String,
                             cancelled: @escaping () -> Bool = { false }) throws(RemoteError) -> String {
        let process = try master.spawn(master.remoteShellCommand(arguments: [path]), stdin: .pipe, stdout: .pipe, stderr: .pipe)
        defer { process.terminate(grace: 0.5) }
        // The script goes on stdin; the copy comes back on stdout.
        let script = Array(Self.script.utf8)
        var sent = 0
        while sent < script.count {
            let n = script[sent...].withUnsafeBytes { write(process.input, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            sent += n
        }
        process.closeInput()
        var reader = FrameReader(fd: process.output, cancelled: cancelled)
        var root: String?
        var files = 0
        while let header = try reader.line() {
            let f = header.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            switch f.first {
            case "root" where f.count == 2:
                root = try makeFolder(folder, name: f[1])
            case "F" where f.count == 3:
                guard let root, let size = Int(f[1]), size >= 0, size <= 64 << 30 else {
                    throw RemoteError(.other, "\(master.host): the copy of \(path) is garbled (a file before its folder, or a bad size)")
                }
                try reader.copy(size, to: try localFile(root, relative: f[2]))
                files += 1
            case "missing"?:
                throw RemoteError(.noRun, "\(master.host):\(path): no such file or folder there")
            default:
                throw RemoteError(.other, "\(master.host): the copy of \(path) is garbled ('\(header.prefix(60))')")
            }
        }
        process.wait(timeout: 5)
        guard let root, files > 0 else {
            let said = RemoteConnector.lastLine(process).map { ": " + $0 } ?? ""
            throw RemoteError(.noRun, "\(master.host):\(path): no run log, TensorBoard file or CSV there\(said)")
        }
        return root
    }

    /// `folder/name`, a new 0700 folder (name is one path component from the host: checked).
    static func makeFolder(_ folder: String, name: String) throws(RemoteError) -> String {
        let safe = name.isEmpty || name == "." || name == ".." || name.contains("/") ? "run" : name
        var path = folder + "/" + safe
        var n = 1
        while mkdir(path, 0o700) != 0 {
            guard errno == EEXIST, n < 100 else { throw RemoteError(.other, "cannot create \(path): \(String(cString: strerror(errno)))") }
            n += 1
            path = folder + "/" + safe + "-\(n)"
        }
        return path
    }

    /// Creates `root/relative` (its folders 0700) for writing; a relative path that climbs out, or a file that is
    /// already there, is refused.
    static func localFile(_ root: String, relative: String) throws(RemoteError) -> Int32 {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !parts.isEmpty, !parts.contains(".."), relative.utf8.count < 4096,
              !relative.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw RemoteError(.other, "refused a file name from the host: '\(relative.prefix(80))'")
        }
        var dir = root
        for part in parts.dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                throw RemoteError(.other, "cannot create \(dir): \(String(cString: strerror(errno)))")
            }
        }
        let path = dir + "/" + parts.last!
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RemoteError(.other, "cannot write \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Reads the framed stream: header lines and the bytes of each file.
    struct FrameReader {
        let fd: Int32
        let cancelled: () -> Bool
        var buffer: [UInt8] = []
        var eof = false

        init(fd: Int32, cancelled: @escaping () -> Bool) { self.fd = fd; self.cancelled = cancelled }

        mutating func fill() throws(RemoteError) {
            if cancelled() { throw RemoteError(.interrupted(SIGINT), "interrupted") }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { buffer += chunk[0..<n] } else if n == 0 || errno != EINTR { eof = true }
        }

        mutating func line() throws(RemoteError) -> String? {
            while true {
                if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    defer { buffer.removeFirst(nl + 1) }
                    return String(decoding: buffer[..<nl], as: UTF8.self)
                }
                if buffer.count > 8192 { throw RemoteError(.other, "the copy's stream is garbled (a header line over 8 KiB)") }
                if eof { return nil }
                try fill()
            }
        }

        mutating func copy(_ size: Int, to out: Int32) throws(RemoteError) {
            defer { close(out) }
            var left = size
            while left > 0 {
                if buffer.isEmpty {
                    if eof { throw RemoteError(.unreachable, "the copy ended early (the connection dropped?)") }
                    try fill()
                    continue
                }
                let n = min(left, buffer.count)
                var done = 0
                while done < n {
                    let w = buffer[done..<n].withUnsafeBytes { write(out, $0.baseAddress!, $0.count) }
                    guard w > 0 else { throw RemoteError(.other, "cannot write the local copy: \(String(cString: strerror(errno)))") }
                    done += w
                }
                buffer.removeFirst(n)
                left -= n
            }
        }
    }

    /// $1: the path there. Prints `root NAME`, then for each file `F SIZE RELATIVE_PATH` and its bytes.
    static let script = #"""
    p=$1
    case $p in '~') p=$HOME;; '~/'*) p="$HOME/${p#??}";; esac
    case $p in /*) ;; *) p="$HOME/$p";; esac
    emit() {
      n=$(wc -c < "$1" | tr -d ' ')
      printf 'F\t%s\t%s\n' "$n" "$2"
      head -c "$n" "$1"
    }
    if [ -f "$p" ]; then
      d=${p%/*}; printf 'root\t%s\n' "${d##*/}"
      emit "$p" "${p##*/}"
    elif [ -d "$p" ]; then
      cd "$p" || exit 1
      printf 'root\t%s\n' "${p##*/}"
      find . \( -name checkpoints -o -name '.?*' \) -prune -o -type f \( -name '*.jsonl' -o -name '*.csv' -o -name 'events.out.tfevents.*' \) -print |
      while IFS= read -r f; do emit "$f" "${f#./}"; done
    else
      printf 'missing\n'
    fi
    """#
}

extension SSHMaster {
    /// The command that runs a script sent on stdin with `arguments` as $1 ...
    func remoteShellCommand(arguments: [String]) -> String {
        (["sh", "-s", "--"] + arguments.map(SSHCommand.quote)).joined(separator: " ")
    }
}
