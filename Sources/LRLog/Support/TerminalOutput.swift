import Foundation

/// Every line lrtop prints outside its UI (the CLI's output and errors, headless progress) leaves through
/// `writeLine`, so text from a file or a peer (a run's name, a theme's, a bridge's message) is stripped of control
/// characters and escape sequences first (`TerminalText`).

/// Writes `text` and a newline to a descriptor; false when it cannot (a closed pipe: SIGPIPE is ignored).
@discardableResult
public func writeLine(_ text: String, to fd: Int32, terminator: String = "\n") -> Bool {
    let bytes = Array((TerminalText.sanitized(text, keepLines: true) + terminator).utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        done += n
    }
    return true
}

/// A line (or lines) to stdout, as `print` would, through the sanitising writer.
public func printOut(_ text: String = "", terminator: String = "\n") {
    fflush(nil)
    _ = writeLine(text, to: STDOUT_FILENO, terminator: terminator)
}

/// One line to stderr, with `write(2)`: `FileHandle.write` traps when the descriptor is closed.
public func printErr(_ message: String) {
    fflush(nil)
    _ = writeLine(message, to: STDERR_FILENO)
}
