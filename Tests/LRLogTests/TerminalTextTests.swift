import Testing
import LRLog

/// The one sanitiser of text from files and peers (issue #20 item 4): no control character or escape sequence
/// survives, and no half of a sequence is left to print.
struct TerminalTextTests {
    @Test(arguments: [
        ("plain name", "plain name"),
        ("\u{1B}]0;pwned\u{07}run", "run"),                    // OSC: set the window title, ended by BEL
        ("\u{1B}]52;c;aGk=\u{1B}\\ok", "ok"),                    // OSC 52 (clipboard), ended by ST
        ("\u{1B}[2J\u{1B}[31mred\u{1B}[0m", "red"),              // CSI: clear the screen, colours
        ("\u{1B}[?1049h\u{1B}(Bx", "x"),                         // private CSI, charset selection
        ("a\u{9B}31mb\u{9D}0;t\u{9C}c", "abc"),                  // C1 CSI and OSC
        ("tab\there\nline\rcr", "tab here line cr"),
        ("del\u{7F}\u{85}\u{08}x", "delx"),                      // DEL, NEL, backspace
        ("\u{1B}", ""),                                          // a lone ESC at the end
        ("ünïcødé ✓ 学", "ünïcødé ✓ 学"),
    ])
    func controlsAndSequencesAreRemoved(_ input: String, _ expected: String) {
        #expect(TerminalText.sanitized(input) == expected)
    }

    @Test func linesAreKeptWhereAWholeTableIsPrinted() {
        #expect(TerminalText.sanitized("a\tb\nc\r\u{1B}[1Ad", keepLines: true) == "a\tb\ncd")
    }

    @Test func anExcerptIsOneShortLine() {
        let long = String(repeating: "x", count: 500) + "\u{1B}[31m"
        let e = TerminalText.excerpt("name\n" + long, limit: 20)
        #expect(e == "name " + String(repeating: "x", count: 14) + "…")
    }
}
