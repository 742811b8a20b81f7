import Testing
import LRTUI

@Suite struct BufferTests {
    @Test func setStringClipsToRectAndBuffer() {
        var b = Buffer(width: 10, height: 2)
        let end = b.set(string: "hello world", at: Position(x: 2, y: 0), style: .plain,
                        clip: Rect(x: 0, y: 0, width: 8, height: 2))
        #expect(b.lines() == ["  hello ", "          "].map { $0.padded(toWidth: 10) })
        #expect(end == 8)
        b.set(string: "abcdefghijklmnop", at: Position(x: 5, y: 1))
        #expect(b.lines()[1] == "     abcde")
        // Outside rows are ignored.
        b.set(string: "zzz", at: Position(x: 0, y: 5))
        #expect(b.trimmedLines() == ["  hello", "     abcde"])
    }

    @Test func negativeStartIsClipped() {
        var b = Buffer(width: 5, height: 1)
        b.set(string: "abcdef", at: Position(x: -2, y: 0))
        #expect(b.lines() == ["cdef "])
    }

    @Test func wideCharactersTakeTwoCells() {
        var b = Buffer(width: 6, height: 1)
        let end = b.set(string: "a日b", at: Position(x: 0, y: 0))
        #expect(end == 4)
        #expect(b[2, 0].isContinuation)
        #expect(b.lines() == ["a日b  "])
    }

    @Test func stylesApplyAndKeepUnsetColours() {
        var b = Buffer(width: 3, height: 1)
        b.fill(b.area, style: Style(bg: .rgb(RGB(1, 2, 3))))
        b.set(string: "x", at: Position(x: 1, y: 0), style: Style(fg: .red, flags: .bold))
        #expect(b[1, 0] == Cell(symbol: "x", fg: .red, bg: .rgb(RGB(1, 2, 3)), flags: .bold))
        #expect(b[0, 0].bg == .rgb(RGB(1, 2, 3)))
    }

    @Test func diffListsOnlyChangedCells() {
        var a = Buffer(width: 4, height: 2)
        a.set(string: "abcd", at: Position(x: 0, y: 0))
        var b = a
        b.set(string: "X", at: Position(x: 2, y: 1))
        b.set(string: "b", at: Position(x: 1, y: 0))  // same as before
        let d = b.diff(from: a)
        #expect(d.count == 1)
        #expect(d.first?.x == 2 && d.first?.y == 1 && d.first?.cell.symbol == "X")
        // A different size changes everything.
        #expect(Buffer(width: 2, height: 2).diff(from: a).count == 4)
    }

    @Test func layoutSplits() {
        let r = Rect(x: 0, y: 0, width: 80, height: 24)
        let rows = r.split(.vertical, [.length(1), .fill(1), .length(1)])
        #expect(rows.map(\.height) == [1, 22, 1])
        #expect(rows.map(\.y) == [0, 1, 23])
        let cols = r.split(.horizontal, [.percentage(25), .fill(1), .fill(2)])
        #expect(cols.map(\.width).reduce(0, +) == 80)
        #expect(cols[0].width == 20)
        #expect(cols[2].width == 40)
        let tight = Rect(width: 5, height: 1).split(.horizontal, [.length(4), .length(4)])
        #expect(tight.map(\.width) == [4, 1])
    }

    @Test func truncationAndPadding() {
        #expect("hello world".truncated(toWidth: 6) == "hello…")
        #expect("hi".padded(toWidth: 4) == "hi  ")
        #expect("hi".leftPadded(toWidth: 4) == "  hi")
        #expect("abc".truncated(toWidth: 3) == "abc")
    }
}
