import Testing
import LRTUI

@Suite struct TrialTableTests {
    let palette = Palette(theme: .builtinDefault, depth: .truecolor)

    let columns: [TrialColumn] = [
        .configuration("trial"), .configuration("lr"), .configuration("sched"),
        .result("val loss", better: .lower), .result("val acc", better: .higher), .series("curve", width: 6),
        .state(),
    ]

    var rows: [TrialRow] {
        [
            TrialRow(id: "a", cells: [.text("a"), .number(1e-3, .lr), .text("cosine"),
                                      .estimate(mean: 0.4321, spread: 0.0123, .metric), .number(0.871, .percent),
                                      .series([0.9, 0.6, 0.43]), .state("done", .good)]),
            TrialRow(id: "b", cells: [.text("b"), .number(1e-2, .lr), .text("step"),
                                      .number(0.3999, .metric), .number(0.902, .percent),
                                      .series([0.8, 0.5, 0.4]), .state("running", .active)]),
            TrialRow(id: "c", cells: [.text("c"), .number(1e-4, .lr), .text("plateau"),
                                      .missing, .missing, .series([]), .state("queued", .waiting)]),
        ]
    }

    func draw(_ table: TrialTable, width: Int = 80, height: Int = 6) -> Buffer {
        var b = Buffer(width: width, height: height)
        table.render(into: &b, area: b.area)
        return b
    }

    @Test func drawsHeaderAndRowsWithTheUIsNumberFormats() {
        let b = draw(TrialTable(columns: columns, rows: rows, palette: palette))
        let lines = b.trimmedLines()
        #expect(lines[0].hasPrefix("trial   lr       sched          val loss"))
        #expect(lines[0].contains("val acc") && lines[0].contains("curve") && lines[0].contains("state"))
        // The same conventions as the rest of the UI: Format.lr, Format.metric, Format.percent, "±" for a spread.
        #expect(lines[1].hasPrefix("a       1.00e-3  cosine   0.4321 ±0.0123"))
        #expect(lines[1].contains("87.1%"))
        #expect(TrialValue.estimate(mean: 0.871, spread: 0.004, .percent).text == "87.1% ±0.4")
        #expect(TrialValue.estimate(mean: 2.5e-4, spread: 1e-5, .metric).text == "2.50e-4 ±1.00e-5")
        #expect(lines[1].hasSuffix("done"))
        #expect(lines[2].hasPrefix("b       0.0100   step"))
        #expect(lines[2].contains("0.3999") && lines[2].contains("90.2%") && lines[2].hasSuffix("running"))
        // A row without results shows dashes, not zeros.
        #expect(lines[3].hasPrefix("c       1.00e-4  plateau") && lines[3].contains("—"))
        #expect(!lines[3].contains("0.0"))
        // Result columns are right-aligned: the val loss column ends at the same cell on every row.
        let end = lines[1].range(of: "0.0123")!.upperBound
        let endB = lines[2].range(of: "0.3999")!.upperBound
        #expect(lines[1].distance(from: lines[1].startIndex, to: end) == lines[2].distance(from: lines[2].startIndex, to: endB))
    }

    @Test func sparklinesShareOneScaleAndStatesAreColoured() {
        let b = draw(TrialTable(columns: columns, rows: rows, palette: palette))
        let curveX = b.line(0).distance(from: b.line(0).startIndex, to: b.line(0).range(of: "curve")!.lowerBound)
        // Row a ends at 0.43 and row b at 0.40, the column's lowest: b's last bar is the lowest possible one.
        let aBars = (0..<6).map { b[curveX + $0, 1].symbol }
        let bBars = (0..<6).map { b[curveX + $0, 2].symbol }
        #expect(String(aBars).trimmingCharacters() == "█▄▁")
        #expect(bBars.last(where: { $0 != " " }) == "▁")
        let stateX = b.line(1).distance(from: b.line(1).startIndex, to: b.line(1).range(of: "done")!.lowerBound)
        #expect(b[stateX, 1].fg == palette.ok.fg)
        #expect(b[stateX, 2].fg == palette.warn.fg)
    }

    @Test func aSparklineIsScaledOverWhatItShows() {
        // The early losses of 100 and 90 are off the left edge: the 6 shown are scaled among themselves.
        let cols: [TrialColumn] = [.configuration("t"), .series("curve", width: 6)]
        let rows = [TrialRow(id: "a", cells: [.text("a"), .series([100, 90, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])])]
        let b = draw(TrialTable(columns: cols, rows: rows, palette: palette), width: 20, height: 2)
        #expect(b.line(1).hasPrefix("a   █▇▅▄▂▁"))
    }

    @Test func sortingCyclesColumnsBestFirstAndReverses() {
        var state = TrialTableState()
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["a", "b", "c"])
        state.sort(by: 3, columns: columns)  // val loss: lower is better
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["b", "a", "c"])
        state.reverseSort()
        // Missing values stay last whichever way the column is sorted.
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["a", "b", "c"])
        state.cycleSortColumn(columns: columns)  // val acc: higher is better, so it starts descending
        #expect(state.sortColumn == 4 && state.descending)
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["b", "a", "c"])
        state.sort(by: 1, columns: columns)  // lr, numerically
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["c", "a", "b"])
        state.sort(by: 2, columns: columns)  // sched, as text
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["a", "c", "b"])
        state.sort(by: 6, columns: columns)  // state: running first, then queued, then done
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["b", "c", "a"])
        state.cycleSortColumn(columns: columns)  // past the last column: the rows' own order again
        #expect(state.sortColumn == nil)
        #expect(state.sorted(rows, columns: columns).map(\.id) == ["a", "b", "c"])
    }

    @Test func theHeaderShowsTheSortAndTheSelectionFollowsItsRow() {
        var state = TrialTableState()
        state.sort(by: 3, columns: columns)
        state.moveSelection(by: 1, rows: rows, columns: columns)
        #expect(state.selectedID == "b")  // the first row in display order
        state.moveSelection(by: 1, rows: rows, columns: columns)
        #expect(state.selectedID == "a")
        let b = draw(TrialTable(columns: columns, rows: rows, state: state, palette: palette))
        #expect(b.line(0).contains("val loss▲"))
        #expect(b.line(1).hasPrefix("b "))
        #expect(b.line(2).hasPrefix("a "))
        #expect(b[0, 2].bg == palette.selected.bg && b[0, 2].bg != b[0, 1].bg)
        #expect(b[40, 2].bg == palette.selected.bg)  // the whole row, not only its text
        // Re-sorting keeps the same row selected wherever it moves.
        state.reverseSort()
        let r = draw(TrialTable(columns: columns, rows: rows, state: state, palette: palette))
        #expect(r.line(0).contains("val loss▼"))
        #expect(r.line(1).hasPrefix("a ") && r[0, 1].bg == palette.selected.bg)
        state.moveSelection(by: 5, rows: rows, columns: columns)
        #expect(state.selectedID == "c")
    }

    @Test func aLongTableScrollsToKeepTheSelectionInView() {
        let many = (0..<20).map { i in TrialRow(id: "t\(i)", cells: [.text("t\(i)"), .number(Double(i), .integer)]) }
        let cols: [TrialColumn] = [.configuration("trial"), .result("steps")]
        var state = TrialTableState(selectedID: "t15")
        let b = draw(TrialTable(columns: cols, rows: many, state: state, palette: palette), width: 20, height: 5)
        #expect(b.trimmedLines().last!.hasPrefix("t15"))
        state.selectedID = "t0"
        let top = draw(TrialTable(columns: cols, rows: many, state: state, palette: palette), width: 20, height: 5)
        #expect(top.line(1).hasPrefix("t0 "))
    }

    @Test func aNarrowAreaCutsConfigurationsFirstThenLeavesColumnsOffOnTheRight() {
        let long: [TrialRow] = [TrialRow(id: "x", cells: [.text("x"), .number(1e-3, .lr),
                                                          .text("warmup:steps=100 -> cosine:T_max=2000"),
                                                          .number(0.5, .metric), .number(0.8, .percent),
                                                          .series([1, 2]), .state("done", .good)])]
        let b = draw(TrialTable(columns: columns, rows: long, palette: palette), width: 60, height: 3)
        let lines = b.trimmedLines()
        #expect(lines[1].contains("warmup:steps=100 -> co") || lines[1].contains("…"))
        #expect(lines[1].contains("0.5000"))  // results still shown
        #expect(lines[1].contains("1.00e-3"))  // a number is never cut short
        let tiny = draw(TrialTable(columns: columns, rows: long, palette: palette), width: 30, height: 3)
        #expect(tiny.line(0).hasSuffix("›"))  // more columns than fit: said so
        #expect(tiny.lines().allSatisfy { $0.count == 30 })
    }

    @Test func anEmptyTableSaysSo() {
        let b = draw(TrialTable(columns: columns, rows: [], palette: palette), width: 80, height: 3)
        #expect(b.line(1).hasPrefix("no rows yet"))
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String { String(filter { $0 != " " }) }
}
