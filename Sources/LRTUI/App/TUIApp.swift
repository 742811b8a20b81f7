import LRLog
import LRCommand

/// How the dashboard runs.
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
    /// Where `t` finds the next theme; nil cycles the built-ins.
    public var themeStore: ThemeStore?
    /// Runs drawn over the main one (replay comparisons), in their own colours with a legend.
    public var overlays: [any RunSource]
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

    public init(maxFPS: Int = 20, pollMs: Int = 50, colorDepth: ColorDepth? = nil, themeStore: ThemeStore? = nil,
                overlays: [any RunSource] = [], exitWhenFinished: Bool = false, paletteRedefinition: Bool = true,
                startupNotice: String? = nil) {
        self.maxFPS = maxFPS; self.pollMs = pollMs; self.colorDepth = colorDepth; self.themeStore = themeStore
        self.overlays = overlays; self.exitWhenFinished = exitWhenFinished
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
}

/// The dashboard's main loop.
public enum TUIApp {
    /// Runs the dashboard in this terminal until the person quits or a signal arrives. Call it on the main thread;
    /// the trainer runs on its own thread behind `source`. The terminal is restored on every way out, a thrown
    /// error included.
    public static func run(source: any RunSource, theme: Theme = .builtinDefault,
                           options: TUIOptions = TUIOptions()) throws -> ExitReason {
        let backend = NcursesBackend(colorDepth: options.colorDepth, paletteRedefinition: options.paletteRedefinition,
                                     mouse: options.mouse, ascii: options.ascii)
        var options = options
        if options.preferencesFile == nil { options.preferencesFile = ViewPreferences.file() }
        return try run(source: source, theme: theme, options: options, backend: backend)
    }

    /// The same loop on any backend (a `MemoryBackend` in tests).
    public static func run(source: any RunSource, theme: Theme = .builtinDefault, options: TUIOptions = TUIOptions(),
                           backend: any TerminalBackend) throws -> ExitReason {
        try backend.start()
        defer { backend.restore() }
        let dashboard = Dashboard(source: source, overlays: options.overlays, theme: theme,
                                  depth: options.colorDepth ?? backend.colorDepth, themeStore: options.themeStore)
        if let n = options.startupNotice { dashboard.showNotice(n, .warning) }
        if let file = options.preferencesFile { remember(in: file, dashboard) }
        if let settings = options.findLRAtStart { dashboard.startFindLR(settings, resumeAfterPick: true) }
        return run(dashboard: dashboard, options: options, backend: backend)
    }

    /// Restores the view remembered in `file` (the theme only when none was chosen) and keeps it up to date.
    public static func remember(in file: String, _ dashboard: Dashboard) {
        let saved = ViewPreferences.load(from: file)
        dashboard.apply(saved)
        if let name = saved.theme, dashboard.theme.name == Theme.builtinDefault.name, name != dashboard.theme.name,
           let store = dashboard.themeStore {
            let result = store.load(name)
            if result.diagnostics.isEmpty { dashboard.setTheme(result.theme) }
        }
        dashboard.onViewChange = { $0.save(to: file) }
    }

    /// The loop over a dashboard that is already set up (replay with runs built in bulk). The backend must be
    /// started; the caller restores it.
    public static func run(dashboard: Dashboard, options: TUIOptions = TUIOptions(),
                           backend: any TerminalBackend) -> ExitReason {
        let clock = ContinuousClock()
        // maxFPS ≤ 0: no limit (tests).
        let activeInterval = options.maxFPS > 0 ? Duration.seconds(1) / options.maxFPS : .zero
        let idleInterval = options.idleFPS.map { $0 > 0 ? Duration.seconds(1) / $0 : .zero } ?? activeInterval
        var lastKey = clock.now
        var frameInterval = activeInterval
        var lastFrame: ContinuousClock.Instant? = nil
        var needsFrame = true
        while true {
            frameInterval = clock.now - lastKey < .seconds(2) ? activeInterval : idleInterval
            if let sig = backend.pendingSignal { return .interrupted(signal: sig) }

            // Wait for a key, but not past the next frame that is due.
            // Wake at least once a frame, to drain new records and draw them.
            let intervalMs = Int(frameInterval.components.seconds * 1000
                                 + frameInterval.components.attoseconds / 1_000_000_000_000_000)
            var timeout = intervalMs > 0 ? min(options.pollMs, intervalMs) : options.pollMs
            if needsFrame, let last = lastFrame {
                let due = last.advanced(by: frameInterval) - clock.now
                timeout = max(0, min(timeout, Int(due.components.seconds * 1000 + due.components.attoseconds / 1_000_000_000_000_000)))
            } else if needsFrame {
                timeout = 0
            }
            var key = backend.readKey(timeoutMs: timeout)
            while let k = key {
                needsFrame = true
                lastKey = clock.now
                switch dashboard.handle(k) {
                case .quit: return .quit
                case .redraw: backend.invalidate()
                case .none: break
                }
                key = backend.readKey(timeoutMs: 0)
            }
            if dashboard.update() { needsFrame = true }
            if options.exitWhenFinished && (dashboard.primary.end != nil || !dashboard.status.state.isActive) {
                draw(dashboard, backend)
                return .finished
            }
            if needsFrame {
                let now = clock.now
                if lastFrame == nil || now - lastFrame! >= frameInterval {
                    draw(dashboard, backend)
                    lastFrame = now
                    needsFrame = false
                }
            }
        }
    }

    static func draw(_ dashboard: Dashboard, _ backend: any TerminalBackend) {
        let (w, h) = backend.size
        var buffer = Buffer(width: max(0, w), height: max(0, h))
        dashboard.render(into: &buffer)
        backend.draw(buffer)
    }
}
