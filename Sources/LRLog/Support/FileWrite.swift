#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation

/// Writes every byte, retrying short writes and EINTR: the one write loop of the log writers.
func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws {
    var done = 0
    try bytes.withUnsafeBytes { b in
        while done < b.count {
            let n = write(fd, b.baseAddress! + done, b.count - done)
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                throw LogError("\(path): write failed: \(String(cString: strerror(code)))", code: code)
            }
            done += n
        }
    }
}

/// How lrtop creates every file and folder it writes (run logs, checkpoints and their temporaries, sub-run and sweep
/// folders, exports, view.conf): the one place that decides what it trusts on disk.
///
/// - A folder that holds lrtop's files under fixed names (a run folder, `checkpoints/`, a sweep's folder) must be
///   the user's own and writable by nobody else (its group only when that group is the user's private group):
///   anyone who can write it could plant a link named `run.jsonl` or `final.ckpt` there. A folder of a single
///   output file (`export-weights OUT`) may also be a shared sticky folder such as /tmp, where others cannot
///   replace or remove what we create. Folders lrtop makes are mode 0755 whatever the umask.
/// - A file is opened with `O_NOFOLLOW` (a planted link is refused, never followed), must then be a regular file
///   owned by the user (checked on the open descriptor, before anything is truncated), and a file written whole
///   goes through a temporary created with `O_EXCL` and renamed into place (the rename replaces a link, it never
///   writes through it).
public enum SafeFiles {
    /// How `open` treats an existing file.
    public enum Opening: Sendable {
        /// Start the file empty (created when missing).
        case truncate
        /// Continue it (created when missing).
        case append
        /// Create it; an existing file or link is an error.
        case exclusive
    }

    /// Creates `url` with its missing parents (mode 0755) and checks that lrtop may keep files in it (see the
    /// type's rules); `sharedAllowed` also accepts a sticky folder others can write (/tmp), for a single output
    /// file. `what` names it in messages ("the run folder"); `instead` says what to do ("choose another --run-dir").
    public static func prepareFolder(_ url: URL, what: String, instead: String,
                                     sharedAllowed: Bool = false) throws(LogError) {
        let path = url.standardizedFileURL.path
        var missing: [String] = []
        var existing = path
        while !existing.isEmpty && existing != "/" && !exists(existing) {
            missing.append(existing)
            existing = (existing as NSString).deletingLastPathComponent
        }
        if !missing.isEmpty {
            let parent = existing.isEmpty ? "/" : existing
            var st = stat()
            if stat(parent, &st) == 0 && st.st_mode & S_IFMT != S_IFDIR {
                throw LogError("cannot create \(what) \(path): \(parent) is \(FileProblem.nonRegularKind(parent) ?? "a file"), "
                    + "not a folder; \(instead)", code: ENOTDIR)
            }
            // The folder we create an entry in must not let others swap what we make for a link.
            try checkFolder(parent, what: "the folder", instead: instead, sharedAllowed: true)
            for dir in missing.reversed() {
                if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                    let code = errno
                    throw LogError("cannot create \(what) \(path): \(String(cString: strerror(code)))"
                        + (dir == path ? "" : " (at \(dir))"), code: code)
                }
            }
        }
        try checkFolder(path, what: what, instead: instead, sharedAllowed: sharedAllowed)
    }

    /// Checks an existing folder against the rules without creating anything.
    public static func checkFolder(_ path: String, what: String, instead: String,
                                   sharedAllowed: Bool = false) throws(LogError) {
        var link = stat()
        guard lstat(path, &link) == 0 else {
            throw LogError("cannot use \(what) \(path): \(errnoText())", code: errno)
        }
        if link.st_mode & S_IFMT == S_IFLNK && link.st_uid != geteuid() && link.st_uid != 0 {
            throw LogError("\(what) \(path) is a symbolic link owned by \(userName(link.st_uid)), not by you: lrtop never "
                + "follows another user's link; \(instead)")
        }
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw LogError("cannot use \(what) \(path): \(errnoText())", code: errno)
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw LogError("\(what) \(path) is \(FileProblem.nonRegularKind(path) ?? "a file"), not a folder: \(instead)")
        }
        let sticky = st.st_mode & S_ISVTX != 0
        if sharedAllowed && sticky { return }
        let me = geteuid()
        let mode = String(st.st_mode & 0o7777, radix: 8)
        if st.st_uid != me && !(sharedAllowed && st.st_uid == 0) {
            throw LogError("\(what) \(path) is owned by \(userName(st.st_uid)), not by you (\(userName(me))): lrtop "
                + "writes only into your own folders, where no one else can plant files or links; \(instead)")
        }
        let othersWrite = st.st_mode & S_IWOTH != 0
        let groupWrites = st.st_mode & S_IWGRP != 0 && !isPrivateGroup(st.st_gid)
        if othersWrite || groupWrites {
            let who = othersWrite ? "every user" : "the members of group \(groupName(st.st_gid))"
            throw LogError("\(what) \(path) can be written by \(who) (mode 0\(mode), owner \(userName(st.st_uid))): "
                + "another user could plant files or links in it; run 'chmod go-w \(path)' or \(instead)")
        }
    }

    /// Refuses `path` when it is a symbolic link (dangling or not), naming where it points.
    public static func refuseLink(_ path: String, what: String) throws(LogError) {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFLNK else { return }
        throw linkError(path, what: what)
    }

    /// Opens `url` for writing, never through a link, as a regular file of this user (the folder is the caller's
    /// to check with `prepareFolder`). Returns the descriptor.
    public static func open(_ url: URL, _ opening: Opening, what: String) throws(LogError) -> Int32 {
        let path = url.path
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK
        switch opening {
        case .truncate: break
        case .append: flags |= O_APPEND
        case .exclusive: flags |= O_EXCL
        }
        let fd = Glibc.open(path, flags, 0o644)
        if fd < 0 {
            let e = errno
            if e == ELOOP { throw linkError(path, what: what) }
            if e == EEXIST && opening == .exclusive {
                throw LogError("\(path): already exists; lrtop creates \(what) only as a new file", code: e)
            }
            throw LogError("\(path): cannot open for writing: \(String(cString: strerror(e)))", code: e)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw LogError("\(path): cannot open for writing: \(String(cString: strerror(e)))", code: e)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw LogError("\(what) \(path) is \(FileProblem.nonRegularKind(path) ?? "not a regular file"), not a regular file: give a file path")
        }
        guard st.st_uid == geteuid() else {
            close(fd)
            throw LogError("\(what) \(path) is owned by \(userName(st.st_uid)), not by you: lrtop never writes into "
                + "another user's file; remove it or choose another path")
        }
        // Truncated only now that it is known to be ours; blocking again for ordinary writes.
        if opening == .truncate && st.st_size > 0 && ftruncate(fd, 0) != 0 {
            let e = errno
            close(fd)
            throw LogError("\(path): cannot truncate: \(String(cString: strerror(e)))", code: e)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Writes a whole file atomically: a temporary `.NAME.tmp-PID` created with `O_EXCL` beside it, then renamed
    /// over `url`, so a reader sees the old file or the new one, and a planted link is replaced, never followed.
    /// `durable`: fsync of the file and of its folder, so a crash after return keeps it (checkpoints).
    public static func writeAtomically(_ bytes: [UInt8], to url: URL, what: String, durable: Bool = false) throws(LogError) {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(temporaryName(for: url.lastPathComponent))
        let fd: Int32
        do { fd = try open(tmp, .exclusive, what: "a temporary file") } catch let e where e.code == EEXIST {
            // Left by an earlier process with our PID (a crash, then PID reuse): it is ours to replace.
            unlink(tmp.path)
            fd = try open(tmp, .exclusive, what: "a temporary file")
        }
        do {
            try writeAll(bytes, to: fd, path: url.path)
            if durable && fsync(fd) != 0 { throw LogError("\(url.path): fsync failed: \(errnoText())", code: errno) }
        } catch {
            close(fd)
            unlink(tmp.path)
            let e = error as? LogError
            throw LogError("cannot write \(what) \(url.path): \(e.map(reasonOnly) ?? "\(error)")", code: e?.code)
        }
        close(fd)
        guard rename(tmp.path, url.path) == 0 else {
            let e = errno
            unlink(tmp.path)
            throw LogError("cannot move \(what) into place at \(url.path): \(String(cString: strerror(e)))", code: e)
        }
        if durable {
            let dfd = Glibc.open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 { fsync(dfd); close(dfd) }
        }
    }

    /// A single output file written whole (an export, a summary, view.conf): its folder made or checked (a shared
    /// sticky folder such as /tmp is allowed), then `writeAtomically`.
    public static func writeFile(_ bytes: [UInt8], to url: URL, what: String, durable: Bool = false) throws(LogError) {
        try prepareFolder(url.deletingLastPathComponent(), what: "the folder of \(what)",
                          instead: "choose another path", sharedAllowed: true)
        try writeAtomically(bytes, to: url, what: what, durable: durable)
    }

    /// `.NAME.tmp-PID`: hidden, and named after its writer so `RunDirectory` can remove those of dead writers.
    public static func temporaryName(for name: String) -> String { ".\(name).tmp-\(getpid())" }

    /// The errno values of a full disk, a quota or a file-size limit: a place to free, not a bug to report.
    public static func isOutOfSpace(_ code: Int32?) -> Bool {
        guard let code else { return false }
        return code == ENOSPC || code == EDQUOT || code == EFBIG
    }

    // MARK: helpers

    private static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    private static func linkError(_ path: String, what: String) -> LogError {
        var target = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &target, target.count - 1)
        let to = n > 0 ? " (to \(String(decoding: target.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)))" : ""
        return LogError("\(what) \(path) is a symbolic link\(to): lrtop never writes through a link; remove it or "
            + "choose another path", code: ELOOP)
    }

    /// The reason of a "PATH: write failed: REASON" error.
    private static func reasonOnly(_ e: LogError) -> String {
        e.message.range(of: ": ", options: .backwards).map { String(e.message[$0.upperBound...]) } ?? e.message
    }

    static func userName(_ uid: uid_t) -> String {
        var pw = passwd(), result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pw, &buffer, buffer.count, &result) == 0, let r = result, let name = r.pointee.pw_name {
            return "\(String(cString: name)) (uid \(uid))"
        }
        return "uid \(uid)"
    }

    static func groupName(_ gid: gid_t) -> String {
        var gr = group(), result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        if getgrgid_r(gid, &gr, &buffer, buffer.count, &result) == 0, let r = result, let name = r.pointee.gr_name {
            return String(cString: name)
        }
        return "\(gid)"
    }

    /// A group only this user can be in: their primary group, listing no other member (Debian's "user private
    /// groups", where a umask of 002 makes every folder group-writable).
    static func isPrivateGroup(_ gid: gid_t) -> Bool {
        guard gid == getegid() else { return false }
        var gr = group(), result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &gr, &buffer, buffer.count, &result) == 0, let r = result else { return false }
        var pw = passwd(), me: UnsafeMutablePointer<passwd>? = nil
        var pwBuffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(geteuid(), &pw, &pwBuffer, pwBuffer.count, &me) == 0, let myName = me?.pointee.pw_name else {
            return false
        }
        var member = r.pointee.gr_mem
        while let m = member?.pointee {
            if strcmp(m, myName) != 0 { return false }
            member = member?.advanced(by: 1)
        }
        return true
    }
}
