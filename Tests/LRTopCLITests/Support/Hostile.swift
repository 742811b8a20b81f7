import Foundation
import Testing

/// What the tests of issue #20 need to play a hostile neighbour or a careless user: a second local user, the
/// child's peak memory, and checkpoints taken apart and put back together with a valid checksum.

/// The tests that need another user run as root (CI does): they create `lrtopother` with `useradd` once.
let runningAsRoot = geteuid() == 0
let needsRoot = "needs root to create a second local user with useradd (CI runs as root); skipped as uid \(geteuid())"

/// The second local user (uid, gid), created on first use; nil when that is not possible.
let otherUser: (name: String, uid: uid_t, gid: gid_t)? = {
    guard runningAsRoot else { return nil }
    let name = "lrtopother"
    if getpwnam(name) == nil {
        _ = try? runCleanly(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
    }
    guard let pw = getpwnam(name) else { return nil }
    return (name, pw.pointee.pw_uid, pw.pointee.pw_gid)
}()

struct MeasuredOutput {
    var status: Int32
    /// Killed by this signal (a trap is SIGILL or SIGTRAP), or 0.
    var signal: Int32
    var stdout: String
    var stderr: String
    /// Peak resident memory of lrtop, in KiB, as GNU time reads it (0 when /usr/bin/time is missing).
    var maxRSSKiB: Int
}

/// GNU time (Debian's `time`, installed by .ci/install): it forks lrtop from its own small process and reads its
/// peak memory with wait4. A child spawned straight from the test runner would not do: spawned with vfork, its
/// peak counts the runner's memory it shared until exec.
let gnuTime = FileManager.default.isExecutableFile(atPath: "/usr/bin/time") ? "/usr/bin/time" : nil

/// Runs `lrtop ARGS` and reports its peak memory too. Output goes to files, so nothing blocks on a full pipe.
func lrtopMeasured(_ args: [String], in directory: URL, environment: [String: String] = [:]) throws -> MeasuredOutput {
    let tag = UUID().uuidString.prefix(8)
    let outPath = directory.appendingPathComponent(".out-\(tag)").path, errPath = directory.appendingPathComponent(".err-\(tag)").path
    let rssPath = directory.appendingPathComponent(".rss-\(tag)").path
    defer { unlink(outPath); unlink(errPath); unlink(rssPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var attr = posix_spawnattr_t()
    initCleanSpawnAttributes(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    // The shell changes folder and becomes GNU time, which runs lrtop and writes its peak memory to a file.
    let measure = gnuTime.map { [$0, "-f", "%M", "-o", rssPath] } ?? []
    let argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory.path] + measure + [lrtopBinary.path] + args
    let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for a in cargs + cenv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, cargs, cenv)
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    var signal = status & 0x7f
    let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
    // GNU time exits 128+N itself when lrtop dies of signal N (and says "Command terminated by signal N").
    let rss = ((try? String(contentsOfFile: rssPath, encoding: .utf8)) ?? "").split(separator: "\n")
    if gnuTime != nil && signal == 0 && code > 128 && rss.contains(where: { $0.hasPrefix("Command terminated by signal") }) {
        signal = code - 128
    }
    return MeasuredOutput(status: code, signal: signal,
                          stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                          stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
                          maxRSSKiB: rss.last.flatMap { Int($0) } ?? 0)
}

/// A `.ckpt` taken apart (Sources/LRTrain/Checkpoint/CheckpointArchive.swift's layout) so a test can change its
/// insides and write it back with a checksum that matches: the checksum says the file is whole, not that it is
/// lrtop's.
struct CheckpointBytes {
    var metadata: [UInt8]
    /// The tensor table as stored: count, then per tensor name length, name, value count, values.
    var table: [UInt8]

    init(_ bytes: [UInt8]) {
        let metaLength = Int(Self.u64(bytes, at: 8))
        metadata = Array(bytes[16..<(16 + metaLength)])
        table = Array(bytes[(16 + metaLength)..<(bytes.count - 16)])
    }

    /// The file, with `metadataLength` in its header when given (a lie about the length).
    func encoded(metadataLength: UInt64? = nil) -> [UInt8] {
        var body = Array("LRTOPCK1".utf8) + Self.le(metadataLength ?? UInt64(metadata.count)) + metadata + table
        body += Self.le(Self.fnv1a(body))
        return body + Array("LRTOPEND".utf8)
    }

    /// The metadata as a JSON object, changed by `body` and written back.
    mutating func editMetadata(_ body: (inout [String: Any]) -> Void) throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(metadata)) as? [String: Any])
        body(&object)
        metadata = [UInt8](try JSONSerialization.data(withJSONObject: object))
    }

    /// Byte offsets in `table` of the first tensor's name length, value count and first value.
    var firstTensor: (nameLength: Int, valueCount: Int, values: Int) {
        let nameLength = Int(table[8]) | Int(table[9]) << 8 | Int(table[10]) << 16 | Int(table[11]) << 24
        return (8, 12 + nameLength, 20 + nameLength)
    }

    static func u64(_ b: [UInt8], at i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) } }
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

extension Array where Element == UInt8 {
    /// Overwrites bytes at `offset` with those of `value` (little-endian).
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let bytes = CheckpointBytes.le(value)
        replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }
}

/// Bytes that would drive a terminal if printed as they are: ESC, BEL, C1 controls, DEL.
func holdsTerminalControls(_ text: String) -> Bool {
    text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || (0x7F...0x9F).contains($0.value) }
}
