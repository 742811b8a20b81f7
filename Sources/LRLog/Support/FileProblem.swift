import Foundation

/// One-line descriptions of file-system problems, for messages that name a path and a reason (never Foundation's
/// `Error Domain=NSCocoaErrorDomain Code=... UserInfo={...}` dump).
public enum FileProblem {
    /// The reason of a file-system error: the POSIX reason where Foundation wraps one ("Not a directory").
    public static func reason(_ error: any Error) -> String {
        if let e = error as? LogError { return e.message }
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        guard ns.domain == NSCocoaErrorDomain else { return "\(error)" }
        switch ns.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "No such file or directory"
        case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return "Permission denied"
        case NSFileWriteOutOfSpaceError: return "No space left on device"
        case NSFileWriteFileExistsError: return "File exists"
        case NSFileWriteVolumeReadOnlyError: return "Read-only file system"
        case NSFileReadInapplicableStringEncodingError, NSFileReadCorruptFileError: return "not UTF-8 text"
        case NSFileWriteInvalidFileNameError: return "invalid file name"
        case NSFileWriteUnknownError, NSFileReadUnknownError:
            return "the file system refused it (\(ns.localizedFailureReason ?? "no reason given"))"
        default: return ns.localizedFailureReason ?? ns.localizedDescription
        }
    }

    /// What the path is when it is not a regular file: "a folder", "a FIFO (named pipe)", "a character device" ...;
    /// nil for a regular file or a path that does not exist.
    public static func nonRegularKind(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// The size of a regular file (nil when it does not exist).
    public static func size(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    /// Reads a whole file lrtop is given (a checkpoint) into memory, saying in one line why it cannot: missing,
    /// not readable by this user (naming its owner and mode), a folder or a device, or a read error.
    public static func readBytes(_ path: String, what: String) throws(LogError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw openError(path, what: what, code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LogError("\(path): cannot read the \(what): \(errnoText())", code: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw LogError("the \(what) \(path) is \(nonRegularKind(path) ?? "not a regular file"), not a file: give the path of a \(what) file")
        }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw LogError("\(path): cannot read the \(what): \(errnoText())", code: errno) }
            if n == 0 { bytes.removeLast(size - done); break }
            done += n
        }
        return bytes
    }

    /// Why `path` cannot be used when `stat` fails: missing, or hidden by permissions (a folder on its path this
    /// user cannot enter says so, instead of "no such file"). Nil when `stat` succeeds.
    public static func statProblem(_ path: String, what: String) -> LogError? {
        var st = stat()
        guard stat(path, &st) != 0 else { return nil }
        let code = errno
        if code == ENOENT { return LogError("\(path): no such \(what)", code: code) }
        return openError(path, what: what, code: code)
    }

    /// Why `open(path)` failed, in words: what the path is, and what to do.
    public static func openError(_ path: String, what: String, code: Int32) -> LogError {
        switch code {
        case ENOENT:
            return LogError("\(path): no such \(what) file", code: code)
        case EACCES, EPERM:
            var st = stat()
            let whose = stat(path, &st) == 0
                ? " (owner \(SafeFiles.userName(st.st_uid)), mode 0\(String(st.st_mode & 0o7777, radix: 8)))" : ""
            return LogError("\(path): permission denied: you cannot read this \(what)\(whose), or cannot enter a folder "
                + "on its path; ask its owner, or copy it where you can read it", code: code)
        case ENOTDIR:
            return LogError("\(path): a part of this path is a file, not a folder (check the path)", code: code)
        default:
            return LogError("\(path): cannot read the \(what): \(String(cString: strerror(code)))", code: code)
        }
    }

    /// Reads a small text file a person wrote (a config, a commands script), saying what is wrong with it in one
    /// line: missing, a folder or device, empty, not UTF-8.
    public static func readText(_ path: String, what: String) throws -> String {
        if let kind = nonRegularKind(path) {
            throw LogError("the \(what) \(path) is \(kind), not a text file: give the path of a file")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LogError("cannot read the \(what) \(path): \(reason(error))")
        }
        if data.count > 16 << 20 {
            throw LogError("the \(what) \(path) is \(data.count >> 20) MiB: that is not a \(what); check the path")
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LogError("the \(what) \(path) is not UTF-8 text (a binary file?): save it as UTF-8")
        }
        if text.contains("\0") { throw LogError("the \(what) \(path) holds NUL bytes (a binary file?): give a text file") }
        return text
    }
}
