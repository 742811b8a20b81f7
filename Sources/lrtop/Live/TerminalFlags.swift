import ArgumentParser
import LRTUI

/// How the terminal UI talks to the terminal: shared by train, replay and watch.
struct TerminalFlags: ParsableArguments {
    @Flag(name: .customLong("no-mouse"), help: "Do not take the mouse (clicks focus panels and open events, the wheel zooms); the terminal keeps its own selection.")
    var noMouse = false
    @Flag(help: "ASCII boxes and dot charts, for terminals without braille and box drawing (TERM=linux gets them anyway).")
    var ascii = false
}

extension TerminalFlags {
    /// The launcher's options with these flags applied.
    func applied(to options: TUIOptions = TUIOptions()) -> TUIOptions {
        var o = options
        o.mouse = !noMouse
        o.ascii = ascii
        return o
    }
}
