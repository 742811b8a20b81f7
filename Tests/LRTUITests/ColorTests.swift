import Testing
import LRTUI

@Suite struct ColorTests {
    @Test func detectsDepthFromEnvironment() {
        #expect(ColorDepth.detect(environment: ["TERM": "xterm-256color", "COLORTERM": "truecolor"]) == .truecolor)
        #expect(ColorDepth.detect(environment: ["TERM": "xterm-256color", "COLORTERM": "24bit"]) == .truecolor)
        #expect(ColorDepth.detect(environment: ["TERM": "xterm-256color"]) == .xterm256)
        #expect(ColorDepth.detect(environment: ["TERM": "screen"], terminalColors: 256) == .xterm256)
        #expect(ColorDepth.detect(environment: ["TERM": "xterm"], terminalColors: 8) == .ansi8)
        #expect(ColorDepth.detect(environment: ["TERM": "vt100"], terminalColors: -1 < 0 ? 2 : 0) == .none)
        #expect(ColorDepth.detect(environment: ["TERM": "dumb", "COLORTERM": "truecolor"]) == .none)
        #expect(ColorDepth.detect(environment: ["TERM": "xterm-256color", "COLORTERM": "truecolor", "NO_COLOR": "1"]) == .none)
        // An empty NO_COLOR does not count (no-color.org).
        #expect(ColorDepth.detect(environment: ["TERM": "xterm-256color", "NO_COLOR": ""]) == .xterm256)
        #expect(ColorDepth.detect(environment: [:]) == .none)
    }

    @Test func degradesToXterm256() {
        // Exact cube colours map to themselves.
        #expect(XtermPalette.nearest256(RGB(255, 0, 0)) == 196)
        #expect(XtermPalette.nearest256(RGB(0, 0, 0)) == 16)
        #expect(XtermPalette.nearest256(RGB(95, 135, 175)) == 16 + 36 * 1 + 6 * 2 + 3)
        // Greys go to the grey ramp.
        #expect(XtermPalette.nearest256(RGB(128, 128, 128)) == 244)
        #expect(XtermPalette.nearest256(RGB(0x0d, 0x11, 0x17)) == 233)
        // Round trip of every cube/grey index.
        for i in 16..<256 {
            #expect(XtermPalette.nearest256(XtermPalette.rgb(of: i)) == i || XtermPalette.rgb(of: XtermPalette.nearest256(XtermPalette.rgb(of: i))) == XtermPalette.rgb(of: i))
        }
        #expect(ColorDepth.xterm256.degrade(.rgb(RGB(255, 0, 0))) == .index(196))
        #expect(ColorDepth.xterm256.degrade(.indexed(42)) == .index(42))
    }

    @Test func degradesToANSI8() {
        #expect(XtermPalette.nearestANSI8(RGB(255, 0, 0)) == 1)
        #expect(XtermPalette.nearestANSI8(RGB(0, 200, 0)) == 2)
        #expect(XtermPalette.nearestANSI8(RGB(0xd2, 0x99, 0x22)) == 3)   // warn amber → yellow
        #expect(XtermPalette.nearestANSI8(RGB(0x58, 0xa6, 0xff)) == 4)   // blue
        #expect(XtermPalette.nearestANSI8(RGB(0xc6, 0x78, 0xdd)) == 5)   // purple → magenta
        #expect(XtermPalette.nearestANSI8(RGB(0x00, 0xcd, 0xcd)) == 6)
        #expect(XtermPalette.nearestANSI8(RGB(0xc9, 0xd1, 0xd9)) == 7)   // light grey text → white
        #expect(XtermPalette.nearestANSI8(RGB(0x0d, 0x11, 0x17)) == 0)   // dark background → black
        #expect(XtermPalette.nearestANSI8(RGB(0x30, 0x36, 0x3d)) == 0)
        #expect(ColorDepth.ansi8.degrade(.rgb(RGB(255, 0, 0))) == .index(1))
        #expect(ColorDepth.ansi8.degrade(.indexed(9)) == .index(1))       // bright red → red
        #expect(ColorDepth.ansi8.degrade(.indexed(196)) == .index(1))
    }

    @Test func degradationChainTruecolorTo256To8ToNone() {
        let c = Color.rgb(RGB(0xff, 0x7b, 0x72))
        #expect(ColorDepth.truecolor.degrade(c) == .rgb(RGB(0xff, 0x7b, 0x72)))
        #expect(ColorDepth.xterm256.degrade(c) == .index(209))   // (255,135,95)
        #expect(ColorDepth.ansi8.degrade(c) == .index(1))
        #expect(ColorDepth.none.degrade(c) == .default)
        #expect(ColorDepth.truecolor.degrade(.default) == .default)
    }

    @Test func monochromePaletteUsesFlagsOnly() {
        let p = Palette(theme: .builtinDefault, depth: .none)
        #expect(p.monochrome)
        #expect(p.selected == Style(flags: .reverse))
        #expect(p.title.flags.contains(.bold))
        #expect(p.planned.flags.contains(.dim))
        #expect(p.error.fg == nil && p.error.flags.contains(.bold))
        let c = Palette(theme: .builtinDefault, depth: .truecolor)
        #expect(c.selected.bg == Theme.builtinDefault["selected_bg"])
    }

    @Test func hexParsing() {
        #expect(RGB(hex: "#FF8000") == RGB(255, 128, 0))
        #expect(RGB(hex: "ff8000")?.hex == "#ff8000")
        #expect(RGB(hex: "#12345G") == nil)
        #expect(RGB(hex: "#123") == nil)
    }
}
