// The only file that calls ncurses. Everything else draws into a Buffer.
import CNcursesW
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// State a signal handler or atexit may touch: atomics and plain C data, nothing that allocates.
private let pendingSignalFlag = Atomic<Int32>(0)
private let cursesActive = Atomic<Bool>(false)
private let atexitInstalled = Atomic<Bool>(false)
nonisolated(unsafe) private var savedTermios = termios()
nonisolated(unsafe) private var savedTermiosValid = false
/// The fault handlers that were installed before ours (by signal number), to pass faults on to.
nonisolated(unsafe) private var faultHandlers = [sighandler_t?](repeating: nil, count: 64)
/// Written to the terminal when the process dies on a fault: reset attributes, show the cursor, leave the
/// alternate screen and keypad mode.
private let emergencyReset: [UInt8] = Array("\u{1b}[?1000l\u{1b}[?1002l\u{1b}[?1006l\u{1b}[0m\u{1b}[?25h\u{1b}[?1l\u{1b}>\u{1b}[?1049l\r\n".utf8)

private func restoreAtExit() {
    if cursesActive.exchange(false, ordering: .sequentiallyConsistent) {
        endwin()
    }
}

/// Async-signal-safe: termios back and a reset sequence, no ncurses.
private func emergencyRestore() {
    guard cursesActive.exchange(false, ordering: .sequentiallyConsistent) else { return }
    if savedTermiosValid { _ = tcsetattr(STDIN_FILENO, TCSANOW, &savedTermios) }
    emergencyReset.withUnsafeBufferPointer { p in _ = write(STDOUT_FILENO, p.baseAddress, p.count) }
}

/// The ncursesw terminal: wide characters, colour pairs allocated on demand, only changed cells written.
/// SIGINT, SIGTERM and SIGHUP set a flag the app loop checks; faults (SIGSEGV, SIGILL, SIGBUS, SIGFPE, SIGTRAP,
/// SIGABRT) put the terminal back before the process dies; `restore()` and an atexit hook call `endwin`.
public final class NcursesBackend: TerminalBackend {
    enum ColorMode: Equatable {
        case none, ansi8, palette256
        /// Colour numbers are 0xRRGGBB (terminfo with 2^24 colours, e.g. TERM=xterm-direct).
        case direct
        /// 24-bit colours are loaded into the palette slot of their nearest 256 colour with init_extended_color.
        case redefine
    }

    struct PairKey: Hashable { var fg: Int32; var bg: Int32 }

    let requestedDepth: ColorDepth?
    let paletteRedefinition: Bool
    let environment: [String: String]
    var window: UnsafeMutablePointer<WINDOW>?
    var screen: OpaquePointer?
    var streams: (UnsafeMutablePointer<FILE>, UnsafeMutablePointer<FILE>)?
    var previous: Buffer?
    var mode: ColorMode = .none
    public private(set) var colorDepth: ColorDepth = .none
    var pairs: [PairKey: Int32] = [:]
    var nextPair: Int32 = 1
    var maxPairs: Int32 = 256
    var slots: [RGB: Int32] = [:]
    var loadedSlots: Set<Int32> = []
    var maxSlot: Int32 = 255
    var oldHandlers: [Int32: sighandler_t?] = [:]
    var currentTimeout: Int32 = -2

    static let terminationSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    static let faultSignals: [Int32] = [SIGSEGV, SIGILL, SIGBUS, SIGFPE, SIGTRAP, SIGABRT]

    /// - Parameters:
    ///   - colorDepth: force a depth; nil detects it from the environment and terminfo.
    ///   - paletteRedefinition: for truecolor on terminals without direct colour, load each theme colour into the
    ///     palette slot of its nearest 256 colour (xterm and most emulators support it; ncurses restores the palette
    ///     on exit; where it is ignored the nearest 256 colour shows). Off: nearest of 256.
    /// Report clicks and wheel turns (`--no-mouse` leaves the terminal's own selection alone).
    let mouse: Bool
    /// Draw ASCII only (the Linux console has no braille or rounded corners; `--ascii`).
    public let ascii: Bool

    public init(colorDepth: ColorDepth? = nil, paletteRedefinition: Bool = true, mouse: Bool = true, ascii: Bool = false,
                environment: [String: String] = ProcessEnvironment.current) {
        self.mouse = mouse
        self.ascii = ASCIIFallback.needed(environment: environment, forced: ascii)
        self.requestedDepth = colorDepth
        self.paletteRedefinition = paletteRedefinition
        self.environment = environment
    }

    deinit { restore() }

    public func start() throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else { throw TUIError.notATerminal }
        if tcgetattr(STDIN_FILENO, &savedTermios) == 0 { savedTermiosValid = true }
        _ = emergencyReset.count  // initialise the global before any signal can need it
        setlocale(LC_ALL, "")
        // newterm, not initscr: an unknown TERM returns NULL here instead of exiting the process.
        guard let out = fdopen(dup(STDOUT_FILENO), "w"), let input = fdopen(dup(STDIN_FILENO), "r") else {
            throw TUIError.terminalSetup("cannot open the terminal's streams")
        }
        guard let screen = newterm(nil, out, input) else {
            fclose(out); fclose(input)
            throw TUIError.terminalSetup("unknown terminal type '\(environment["TERM"] ?? "")' (set TERM, e.g. TERM=xterm-256color)")
        }
        self.screen = screen
        self.streams = (out, input)
        let (rows, cols) = Self.terminalSize() ?? (24, 80)
        guard let w = newwin(Int32(rows), Int32(cols), 0, 0) else {
            endwin()
            throw TUIError.terminalSetup("cannot create a window")
        }
        window = w
        cursesActive.store(true, ordering: .sequentiallyConsistent)
        if !atexitInstalled.exchange(true, ordering: .sequentiallyConsistent) {
            atexit { restoreAtExit() }
        }
        installSignalHandlers()
        cbreak()
        noecho()
        nonl()
        keypad(w, true)
        // Home / End as tmux, screen and rxvt send them, whatever TERM's terminfo says (replay's start / end keys).
        for (seq, code) in [("\u{1b}[1~", KEY_HOME), ("\u{1b}[4~", KEY_END), ("\u{1b}[7~", KEY_HOME), ("\u{1b}[8~", KEY_END),
                            ("\u{1b}[H", KEY_HOME), ("\u{1b}[F", KEY_END), ("\u{1b}OH", KEY_HOME), ("\u{1b}OF", KEY_END)] {
            if key_defined(seq) == 0 { _ = define_key(seq, code) }
        }
        if mouse {
            _ = mousemask(lrtop_mouse_click | lrtop_mouse_wheel_up | lrtop_mouse_wheel_down, nil)
            _ = mouseinterval(0)
        }
        intrflush(w, false)
        leaveok(w, true)
        _ = set_escdelay(25)
        curs_set(0)
        setTimeout(0)
        setupColors()
        previous = nil
        werase(w)
    }

    func setupColors() {
        let colors = Int(tigetnum("colors"))
        var depth = requestedDepth ?? ColorDepth.detect(environment: environment, terminalColors: colors > 0 ? colors : nil)
        guard depth != .none, has_colors() else {
            mode = .none; colorDepth = .none
            return
        }
        start_color()
        use_default_colors()
        let pairsCap = Int(tigetnum("pairs"))
        maxPairs = Int32(max(64, min(pairsCap > 0 ? pairsCap : 64, 32767)))
        switch depth {
        case .truecolor:
            if colors >= 0x1000000 {
                mode = .direct
            } else if paletteRedefinition && can_change_color() && colors >= 256 {
                mode = .redefine
                maxSlot = Int32(min(colors, 256) - 1)
            } else if colors >= 256 {
                mode = .palette256; depth = .xterm256
            } else {
                mode = .ansi8; depth = .ansi8
            }
        case .xterm256:
            if colors >= 256 { mode = .palette256 } else { mode = .ansi8; depth = .ansi8 }
        case .ansi8:
            mode = .ansi8
        case .none:
            mode = .none
        }
        colorDepth = depth
    }

    func installSignalHandlers() {
        for sig in Self.terminationSignals {
            oldHandlers[sig] = signal(sig) { s in pendingSignalFlag.store(s, ordering: .relaxed) }
        }
        for sig in Self.faultSignals {
            let previous = signal(sig) { s in
                emergencyRestore()
                // Hand the signal to whoever had it before (the Swift runtime's backtracer, or the default action).
                let handler = s >= 0 && s < 64 ? faultHandlers[Int(s)] : nil
                signal(s, handler ?? SIG_DFL)
                raise(s)
            }
            oldHandlers[sig] = previous
            // An ignored fault would re-fault forever: give it the default action instead.
            let isIgnore = previous.map { unsafeBitCast($0, to: Int.self) == 1 } ?? false
            faultHandlers[Int(sig)] = isIgnore ? nil : previous
        }
    }

    func restoreSignalHandlers() {
        for (sig, handler) in oldHandlers { signal(sig, handler) }
        oldHandlers.removeAll()
    }

    public func restore() {
        if cursesActive.exchange(false, ordering: .sequentiallyConsistent) {
            if let w = window { delwin(w) }
            endwin()
            if let s = screen { delscreen(s) }
            if let (o, i) = streams { fclose(o); fclose(i) }
            screen = nil
            streams = nil
        }
        if !oldHandlers.isEmpty { restoreSignalHandlers() }
        window = nil
        previous = nil
    }

    /// Rows and columns from the tty.
    static func terminalSize() -> (Int, Int)? {
        var ws = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0, ws.ws_col > 0 else { return nil }
        return (Int(ws.ws_row), Int(ws.ws_col))
    }

    public var size: (width: Int, height: Int) {
        guard let w = window else { return (0, 0) }
        return (Int(getmaxx(w)), Int(getmaxy(w)))
    }

    public var pendingSignal: Int32? {
        let s = pendingSignalFlag.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    func setTimeout(_ ms: Int32) {
        guard let w = window, ms != currentTimeout else { return }
        wtimeout(w, ms)
        currentTimeout = ms
    }

    public func readKey(timeoutMs: Int) -> Key? {
        guard let w = window else { return nil }
        setTimeout(Int32(max(0, min(timeoutMs, 1000))))
        var ch: wint_t = 0
        let r = wget_wch(w, &ch)
        if r == KEY_CODE_YES {
            let code = Int32(ch)
            switch code {
            case KEY_RESIZE:
                // ncurses resized its screen; our window follows, and everything is redrawn at the new size.
                if let (rows, cols) = Self.terminalSize() {
                    _ = resize_term(Int32(rows), Int32(cols))
                    _ = wresize(w, Int32(rows), Int32(cols))
                }
                previous = nil
                return .resize
            case KEY_UP: return .up
            case KEY_DOWN: return .down
            case KEY_LEFT: return .left
            case KEY_RIGHT: return .right
            case KEY_HOME: return .home
            case KEY_END: return .end
            case KEY_NPAGE: return .pageDown
            case KEY_PPAGE: return .pageUp
            case KEY_BACKSPACE: return .backspace
            case KEY_DC: return .delete
            case KEY_ENTER: return .enter
            case KEY_BTAB: return .backTab
            case KEY_F0 + 1...KEY_F0 + 24: return .function(Int(code - KEY_F0))
            case KEY_MOUSE:
                var event = MEVENT()
                guard getmouse(&event) == OK else { return nil }
                let x = Int(event.x), y = Int(event.y)
                if event.bstate & lrtop_mouse_wheel_up != 0 { return .mouse(MouseEvent(.wheelUp, x: x, y: y)) }
                if event.bstate & lrtop_mouse_wheel_down != 0 { return .mouse(MouseEvent(.wheelDown, x: x, y: y)) }
                if event.bstate & lrtop_mouse_click != 0 { return .mouse(MouseEvent(.click, x: x, y: y)) }
                return nil
            default: return nil
            }
        }
        guard r == OK else { return nil }
        return Key.fromCodePoint(UInt32(ch))
    }

    // MARK: drawing

    public func invalidate() { previous = nil }

    public func draw(_ buffer: Buffer) {
        guard let w = window else { return }
        let buffer = ascii ? ASCIIFallback.apply(buffer) : buffer
        let changes: [CellChange]
        if let prev = previous, prev.area == buffer.area {
            changes = buffer.diff(from: prev)
        } else {
            clearok(w, true)
            changes = buffer.diff(from: Buffer(width: 0, height: 0))
        }
        var cc = cchar_t()
        var wch: [wchar_t] = Array(repeating: 0, count: Int(CCHARW_MAX) + 1)
        for change in changes where !change.cell.isContinuation {
            let cell = change.cell
            var n = 0
            for s in cell.symbol.unicodeScalars.prefix(Int(CCHARW_MAX)) { wch[n] = wchar_t(bitPattern: s.value); n += 1 }
            wch[n] = 0
            var pair = pairNumber(fg: cell.fg, bg: cell.bg)
            _ = setcchar(&cc, wch, attributes(cell.flags), 0, &pair)
            _ = mvwadd_wch(w, Int32(change.y), Int32(change.x), &cc)
        }
        wnoutrefresh(w)
        doupdate()
        previous = buffer
    }

    func attributes(_ flags: CellFlags) -> attr_t {
        var a: attr_t = 0
        if flags.contains(.bold) { a |= 0x200000 }       // A_BOLD
        if flags.contains(.dim) { a |= 0x100000 }        // A_DIM
        if flags.contains(.reverse) { a |= 0x40000 }     // A_REVERSE
        if flags.contains(.underline) { a |= 0x20000 }   // A_UNDERLINE
        return a
    }

    /// The colour number for ncurses (-1: the terminal's default).
    func colorNumber(_ color: Color) -> Int32 {
        switch mode {
        case .none: return -1
        case .ansi8:
            if case .index(let i) = ColorDepth.ansi8.degrade(color) { return Int32(i) }
            return -1
        case .palette256:
            if case .index(let i) = ColorDepth.xterm256.degrade(color) { return Int32(i) }
            return -1
        case .direct:
            switch color {
            case .default: return -1
            case .indexed(let i) where i < 8: return Int32(i)
            case .indexed(let i): return directValue(XtermPalette.rgb(of: Int(i)))
            case .rgb(let c): return directValue(c)
            }
        case .redefine:
            switch color {
            case .default: return -1
            case .indexed(let i): return Int32(i)
            case .rgb(let c): return slot(for: c)
            }
        }
    }

    func directValue(_ c: RGB) -> Int32 {
        max(8, Int32(c.r) << 16 | Int32(c.g) << 8 | Int32(c.b))
    }

    /// The palette slot for a colour: its nearest xterm-256 index, loaded with the exact colour the first time.
    /// A terminal that ignores palette changes (tmux, for one) still shows the nearest 256 colour; two theme colours
    /// that share a nearest index share the first one's exact value.
    func slot(for c: RGB) -> Int32 {
        if let s = slots[c] { return s }
        let index = Int32(XtermPalette.nearest256(c))
        if !loadedSlots.contains(index) && index <= maxSlot {
            func scale(_ v: UInt8) -> Int32 { Int32((Int(v) * 1000 + 127) / 255) }
            if init_extended_color(index, scale(c.r), scale(c.g), scale(c.b)) != ERR { loadedSlots.insert(index) }
        }
        slots[c] = index
        return index
    }

    func pairNumber(fg: Color, bg: Color) -> Int32 {
        guard mode != .none else { return 0 }
        var key = PairKey(fg: colorNumber(fg), bg: colorNumber(bg))
        // With 8 colours, distinct theme colours can collapse into one (grey text on a near-black background):
        // keep text readable by flipping it to the other of black and white.
        if mode == .ansi8 && key.fg == key.bg && key.fg >= 0 { key.fg = key.bg == 0 ? 7 : 0 }
        if key.fg == -1 && key.bg == -1 { return 0 }
        if let p = pairs[key] { return p }
        guard nextPair < maxPairs else { return 0 }
        let p = nextPair
        guard init_extended_pair(p, key.fg, key.bg) != ERR else { return 0 }
        nextPair += 1
        pairs[key] = p
        return p
    }
}

/// The process environment without Foundation.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}
