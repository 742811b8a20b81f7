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
        default: return "error \(ns.code)"
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
