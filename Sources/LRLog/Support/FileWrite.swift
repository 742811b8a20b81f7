#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Writes every byte, retrying short writes and EINTR: the one write loop of the log writers.
func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws {
    var done = 0
    try bytes.withUnsafeBytes { b in
        while done < b.count {
            let n = write(fd, b.baseAddress! + done, b.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError("\(path): write failed: \(errnoText())")
            }
            done += n
        }
    }
}
