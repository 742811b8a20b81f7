import LRLog
import LRCommand

/// How a screen runs in the terminal.
public struct TUIOptions {
    /// At most this many frames a second (frames are drawn only when something changed); 0: no limit.
    public var maxFPS: Int
    /// The frame rate once no key has been pressed for two seconds (nil: always `maxFPS`). Watching needs fewer
    /// frames than steering, and every frame costs the training it watches a little on a small machine.
    public var idleFPS: Int? = nil
    /// How long to wait for a key before draining records again (milliseconds).
    public var pollMs: Int
    /// Force a colour depth; nil detects it.
    public var colorDepth: ColorDepth?
    /// Return `.finished` when the run ends instead of waiting for `q`.
    public var exitWhenFinished: Bool
    /// For truecolor on terminals without direct colour: load theme colours into palette slots.
    public var paletteRedefinition: Bool
    /// Shown on the key bar at start (e.g. theme diagnostics).
    public var startupNotice: String?
    /// Clicks focus panels and open events, the wheel zooms (`--no-mouse`: off, the terminal keeps its selection).
    public var mouse = true
    /// ASCII boxes and dot charts (`--ascii`; the Linux console gets them anyway).
    public var ascii = false
    /// Where the view (theme, zoom, smoothing) is remembered between sessions; nil: `ViewPreferences.file()` for a
    /// real terminal, nowhere in tests.
    public var preferencesFile: String?
    /// `lrtop find-lr`: run this LR range test at once and open its panel; enter then trains with the pick.
    public var findLRAtStart: LRRangeSettings?

    public init(maxFPS: Int = 20, pollMs: Int = 50, colorDepth: ColorDepth? = nil, exitWhenFinished: Bool = false,
                paletteRedefinition: Bool = true, startupNotice: String? = nil) {
        self.maxFPS = maxFPS; self.pollMs = pollMs; self.colorDepth = colorDepth
        self.exitWhenFinished = exitWhenFinished
        self.paletteRedefinition = paletteRedefinition; self.startupNotice = startupNotice
    }
}

/// Why the dashboard returned.
public enum ExitReason: Equatable, Sendable {
    /// The person quit (with `q`, confirmed when training was still running, or ctrl-c as a key).
    case quit
    /// SIGINT, SIGTERM or SIGHUP arrived (`MemoryBackend.endOfScriptSignal` in tests).
    case interrupted(signal: Int32)
    /// The run ended and `exitWhenFinished` was set.
    case finished
    /// `d`: the screen closes and the run goes on without it (a run trained here continues headless).
    case detached
}

/// What a screen's key handling asks of the loop.
public enum ScreenAction: Equatable, Sendable {
    case none
    case quit
    /// Close the screen, leave the run going (`ExitReason.detached`).
    case detach
    /// The whole screen should be written again.
    case redraw
}

/// One full-screen view the launcher runs (btop's screen table): the dashboard of a run, the sweep's leaderboard.
/// A screen never touches the terminal: it takes data, keys and draws into a buffer; `TUIApp` does the rest.
public protocol Screen: AnyObject {
    /// Called once the terminal is up, before the first frame: its colour depth and the session's options.
    func begin(depth: ColorDepth, options: TUIOptions)
    /// Takes what arrived since the last call; returns whether anything changed (a frame is due).
    func update() -> Bool
    func handle(_ key: Key) -> ScreenAction
    func render(into buffer: inout Buffer)
    /// What it shows is over (the run ended): the loop returns `.finished` if `TUIOptions.exitWhenFinished`.
    var hasFinished: Bool { get }
}

/// The one main loop of every screen, and the terminal around it.
///
/// A single deadline decides when to wake: the next frame that is due (at most `maxFPS`, `idleFPS` once no key
/// has come for two seconds) or `pollMs`, whichever is first; keys are read the moment they arrive. Frames are
/// drawn only when the screen changed, and write only the cells that changed.
public enum TUIApp {
    /// Runs a screen in this terminal until the person quits or a signal arrives. Call it on the main thread;
    /// the work behind the screen (a trainer, a sweep) runs on its own threads. The terminal is restored on every
    /// way out, a thrown error included.
    public static func run(_ screen: any Screen, options: TUIOptions = TUIOptions()) throws -> ExitReason {
        let backend = NcursesBackend(colorDepth: options.colorDepth, paletteRedefinition: options.paletteRedefinition,
                                     mouse: options.mouse, ascii: options.ascii)
        var options = options
        if options.preferencesFile == nil { options.preferencesFile = ViewPreferences.file() }
        return try run(screen, options: options, backend: backend)
    }

    /// The same on any backend (a `MemoryBackend` in tests).
    public static func run(_ screen: any Screen, options: TUIOptions = TUIOptions(),
                           backend: any TerminalBackend) throws -> ExitReason {
        try backend.start()
        defer { backend.restore() }
        screen.begin(depth: options.colorDepth ?? backend.colorDepth, options: options)
        return loop(screen, options: options, backend: backend)
    }

    static func loop(_ screen: any Screen, options: TUIOptions, backend: any TerminalBackend) -> ExitReason {
        let clock = ContinuousClock()
        // maxFPS ≤ 0: no limit (tests).
        let activeInterval = options.maxFPS > 0 ? Duration.seconds(1) / options.maxFPS : .zero
        let idleInterval = options.idleFPS.map { $0 > 0 ? Duration.seconds(1) / $0 : .zero } ?? activeInterval
        var lastKey = clock.now
        var lastFrame: ContinuousClock.Instant? = nil
        var needsFrame = true
        while true {
            let frameInterval = clock.now - lastKey < .seconds(2) ? activeInterval : idleInterval
            if let sig = backend.pendingSignal { return .interrupted(signal: sig) }

            // Wait for a key, but not past the next frame that is due; wake at least every `pollMs` to take new
            // data and draw it.
            var timeout = frameInterval > .zero ? min(options.pollMs, milliseconds(frameInterval)) : options.pollMs
            if needsFrame, let last = lastFrame {
                timeout = max(0, min(timeout, milliseconds(last.advanced(by: frameInterval) - clock.now)))
            } else if needsFrame {
                timeout = 0
            }
            var key = backend.readKey(timeoutMs: timeout)
            while let k = key {
                needsFrame = true
                lastKey = clock.now
                if k == .resize { backend.invalidate() }
                switch screen.handle(k) {
                case .quit: return .quit
                case .detach: return .detached
                case .redraw: backend.invalidate()
                case .none: break
                }
                key = backend.readKey(timeoutMs: 0)
            }
            if screen.update() { needsFrame = true }
            if options.exitWhenFinished && screen.hasFinished {
                draw(screen, backend)
                return .finished
            }
            if needsFrame, lastFrame.map({ clock.now - $0 >= frameInterval }) ?? true {
                draw(screen, backend)
                lastFrame = clock.now
                needsFrame = false
            }
        }
    }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    static func draw(_ screen: any Screen, _ backend: any TerminalBackend) {
        let (w, h) = backend.size
        var buffer = Buffer(width: max(0, w), height: max(0, h))
        screen.render(into: &buffer)
        backend.draw(buffer)
    }
}

extension Dashboard: Screen {
    /// The terminal's colour depth, the startup notice, the view remembered from the last session, and
    /// `lrtop find-lr`'s sweep at once.
    public func begin(depth: ColorDepth, options: TUIOptions) {
        setDepth(depth)
        if let n = options.startupNotice { showNotice(n, .warning) }
        if let file = options.preferencesFile { remember(in: file) }
        if let settings = options.findLRAtStart { startFindLR(settings, resumeAfterPick: true) }
    }

    public var hasFinished: Bool { primary.end != nil || !status.state.isActive }

    /// Restores the view remembered in `file` (the theme only when none was chosen) and keeps it up to date.
    public func remember(in file: String) {
        let saved = ViewPreferences.load(from: file)
        apply(saved)
        if let name = saved.theme, theme.name == Theme.builtinDefault.name, name != theme.name, let store = themeStore {
            let result = store.load(name)
            if result.diagnostics.isEmpty { setTheme(result.theme) }
        }
        onViewChange = { $0.save(to: file) }
    }
}
