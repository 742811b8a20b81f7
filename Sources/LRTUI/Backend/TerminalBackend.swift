/// Where frames go and keys come from: the ncurses terminal, or memory in tests.
public protocol TerminalBackend: AnyObject {
    /// Takes over the terminal (or does nothing in memory).
    func start() throws
    /// Gives the terminal back as it was. Safe to call more than once.
    func restore()
    /// The current size in cells.
    var size: (width: Int, height: Int) { get }
    /// What colours the terminal can show.
    var colorDepth: ColorDepth { get }
    /// Waits up to `timeoutMs` for a key (0: do not wait). `.resize` when the terminal changed size.
    func readKey(timeoutMs: Int) -> Key?
    /// Writes the frame, only the cells that changed since the last one.
    func draw(_ buffer: Buffer)
    /// A termination signal that arrived (SIGINT, SIGTERM, SIGHUP), for the loop to stop on.
    var pendingSignal: Int32? { get }
    /// Forgets what is on screen, so the next draw writes every cell.
    func invalidate()
}

public enum TUIError: Error, CustomStringConvertible, Equatable {
    case notATerminal
    case terminalSetup(String)

    public var description: String {
        switch self {
        case .notATerminal:
            return "the dashboard needs a terminal: standard input and output must be a TTY (use --headless to train without it)"
        case .terminalSetup(let why):
            return "cannot set up the terminal: \(why)"
        }
    }
}

/// A backend in memory for tests: scripted input, recorded frames.
public final class MemoryBackend: TerminalBackend {
    public enum Event: Sendable {
        case key(Key)
        /// The terminal becomes this size (readKey reports `.resize`).
        case resize(width: Int, height: Int)
        /// `readKey` returns nil this many times (lets the loop drain records and draw).
        case idle(Int)
        /// A signal arrives.
        case signal(Int32)
    }

    /// The signal reported once the script has run out (so a test's loop ends).
    public static let endOfScriptSignal: Int32 = 0

    public private(set) var width: Int
    public private(set) var height: Int
    public let colorDepth: ColorDepth
    var script: [Event]
    var signal: Int32?
    /// Every frame drawn.
    public private(set) var frames: [Buffer] = []
    /// How many cells each draw wrote.
    public private(set) var changedCellCounts: [Int] = []
    /// What the screen shows now.
    public private(set) var screen: Buffer
    public private(set) var started = false
    public private(set) var restoreCount = 0
    /// readKey calls and the timeouts they asked for.
    public private(set) var readTimeouts: [Int] = []

    public init(width: Int = 80, height: Int = 24, colorDepth: ColorDepth = .truecolor, script: [Event] = []) {
        self.width = width; self.height = height; self.colorDepth = colorDepth; self.script = script
        screen = Buffer(width: width, height: height)
    }

    /// Adds events at the end of the script.
    public func enqueue(_ events: [Event]) { script += events }

    public func start() throws { started = true }
    public func restore() { restoreCount += 1 }
    public var size: (width: Int, height: Int) { (width, height) }

    public var pendingSignal: Int32? {
        if let s = signal { return s }
        if script.isEmpty && started { return Self.endOfScriptSignal }
        return nil
    }

    public func readKey(timeoutMs: Int) -> Key? {
        readTimeouts.append(timeoutMs)
        guard let event = script.first else { return nil }
        switch event {
        case .key(let k):
            script.removeFirst()
            return k
        case .resize(let w, let h):
            script.removeFirst()
            width = w; height = h
            return .resize
        case .idle(let n):
            if n <= 1 { script.removeFirst() } else { script[0] = .idle(n - 1) }
            return nil
        case .signal(let s):
            script.removeFirst()
            signal = s
            return nil
        }
    }

    public func invalidate() { screen = Buffer(width: 0, height: 0) }

    public func draw(_ buffer: Buffer) {
        let changes = buffer.diff(from: screen)
        if buffer.area != screen.area { screen = Buffer(area: buffer.area) }
        for c in changes { screen[c.x, c.y] = c.cell }
        changedCellCounts.append(changes.count)
        frames.append(buffer)
    }
}
