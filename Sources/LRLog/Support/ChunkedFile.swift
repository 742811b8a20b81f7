#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file front to back through one reusable buffer, so a 200 MB file costs a few MB of memory.
/// The unconsumed bytes are `pointer ..< pointer + available`; `readMore()` appends the next bytes,
/// moving the unconsumed ones to the front and growing the buffer when one record needs more.
final class ChunkedFile {
    let path: String
    private let fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Unconsumed bytes are buffer[start ..< end].
    private var start = 0
    private var end = 0
    /// File offset of buffer[0].
    private var bufferOffset: Int
    private(set) var atEOF = false
    /// Bytes from this offset on are not read (a piece of a file read by several threads).
    private let limit: Int

    /// Opens `path` for reading at byte `offset`, up to byte `limit` (default: the end). Throws a one-line LogError if
    /// it cannot be opened.
    init(path: String, offset: Int = 0, limit: Int = .max, chunkSize: Int = 4 << 20) throws {
        self.path = path
        self.limit = limit
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw LogError("\(path): cannot open: \(errnoText())") }
        if offset > 0, lseek(fd, off_t(offset), SEEK_SET) < 0 {
            let text = errnoText()
            close(fd)
            throw LogError("\(path): cannot seek to \(offset): \(text)")
        }
        bufferOffset = offset
        capacity = chunkSize
        buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize + 1, alignment: 16)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// Size of the file now, or -1.
    var fileSize: Int {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : -1
    }

    var pointer: UnsafePointer<UInt8> { UnsafePointer(buffer.assumingMemoryBound(to: UInt8.self) + start) }
    var available: Int { end - start }
    /// File offset of the first unconsumed byte.
    var offset: Int { bufferOffset + start }

    func consume(_ n: Int) { start += n }

    /// Reads more bytes after the unconsumed ones. Returns false at end of file (nothing was added).
    func readMore() throws -> Bool {
        if atEOF { return false }
        if start > 0, end == capacity || start > capacity / 2 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            bufferOffset += start
            end -= start
            start = 0
        }
        if end == capacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2 + 1, alignment: 16)
            grown.copyMemory(from: buffer + start, byteCount: end - start)
            buffer.deallocate()
            buffer = grown
            bufferOffset += start
            end -= start
            start = 0
            capacity *= 2
        }
        let room = min(capacity - end, limit - (bufferOffset + end))
        if room <= 0 { atEOF = true; return false }
        while true {
            let n = read(fd, buffer + end, room)
            if n > 0 { end += n; return true }
            if n == 0 { atEOF = true; return false }
            if errno == EINTR { continue }
            throw LogError("\(path): read error at byte \(bufferOffset + end): \(errnoText())")
        }
    }

    /// Makes at least `n` unconsumed bytes available unless the file ends first; returns whether it did.
    func ensure(_ n: Int) throws -> Bool {
        while available < n {
            if try !readMore() { return false }
        }
        return true
    }
}
