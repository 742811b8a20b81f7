import Testing
import LRTUI

@Suite struct ChartTests {
    func render(_ chart: LineChart, _ w: Int, _ h: Int) -> Buffer {
        var b = Buffer(width: w, height: h)
        chart.render(into: &b, area: b.area)
        return b
    }

    @Test func brailleDotsForAKnownSeries() {
        // 2 cells = 4 dot columns × 4 dot rows; values 0,1,2,3 climb one dot per column.
        let s = PointSeries(start: 0, values: [0, 1, 2, 3])
        let chart = LineChart(series: [ChartSeries(name: "s", source: s, style: .plain)], steps: 0...3,
                              yBounds: 0...3, showYAxis: false, showXAxis: false)
        #expect(render(chart, 2, 1).lines() == ["⡠⠊"])
        // Falling, two rows high (8 dot rows): values 7...0 over 4 columns with lines between.
        let down = PointSeries(start: 0, values: [7, 5, 2, 0])
        let c2 = LineChart(series: [ChartSeries(name: "s", source: down, style: .plain)], steps: 0...3,
                           yBounds: 0...7, showYAxis: false, showXAxis: false)
        // Dots: column 0 row 0; the line 7→5 puts rows 1-3 in column 1; 5→2 rows 4-5 in column 2; 2→0 rows 6-7 in column 3.
        #expect(render(c2, 2, 2).lines() == ["⢱ ", " ⢣"])
    }

    @Test func brailleCanvasBits() {
        var c = BrailleCanvas(width: 1, height: 1)
        #expect(c.dotWidth == 2 && c.dotHeight == 4)
        for y in 0..<4 { c.set(x: 0, y: y, style: .plain); c.set(x: 1, y: y, style: .plain) }
        #expect(c.symbol(cellX: 0, cellY: 0) == "⣿")
        var d = BrailleCanvas(width: 1, height: 1)
        d.set(x: 1, y: 3, style: .plain)
        #expect(d.symbol(cellX: 0, cellY: 0) == "⢀")
    }

    @Test func aSpikeAmongTenThousandFlatPointsStaysVisible() {
        var s = EnvelopeSeries()
        for i in 0..<10_000 { s.append(step: i, value: i == 6_123 ? 10 : 1) }
        let chart = LineChart(series: [ChartSeries(name: "loss", source: s, style: .plain)], steps: 0...9_999,
                              showYAxis: false, showXAxis: false)
        let b = render(chart, 40, 5)
        let top = Array(b.lines()[0])
        let lit = top.indices.filter { top[$0] != " " && top[$0] != "⠀" }
        #expect(lit.count == 1)
        #expect(lit.first == 6_123 * 80 / 10_000 / 2)
        // The flat line is on the bottom row across the whole width.
        #expect(Array(b.lines()[4]).allSatisfy { $0 != " " })
        // A downward spike too.
        var d = EnvelopeSeries()
        for i in 0..<10_000 { d.append(step: i, value: i == 777 ? -5 : 1) }
        let b2 = render(LineChart(series: [ChartSeries(name: "d", source: d, style: .plain)], steps: 0...9_999,
                                  showYAxis: false, showXAxis: false), 40, 5)
        let bottom = Array(b2.lines()[4])
        #expect(bottom.indices.filter { bottom[$0] != " " }.count >= 1)
        #expect(bottom[777 * 80 / 10_000 / 2] != " ")
    }

    @Test func linearAxisLabels() {
        let s = PointSeries(start: 0, values: (0...100).map { Double($0) / 100 })
        let chart = LineChart(series: [ChartSeries(name: "s", source: s, style: .plain)], steps: 0...100)
        let b = render(chart, 30, 12)
        #expect(yLabels(b) == ["1", "0.75", "0.5", "0.25", "0"])
        // The x axis: a line with step labels, starting at the corner.
        let last = b.lines()[11]
        #expect(last.hasPrefix("    └"))
        #expect(last.contains("0") && last.contains("100"))
        #expect(last.contains("─"))
    }

    @Test func logAxisLabels() {
        let s = PointSeries(start: 0, values: (0...100).map { 1e-4 * pow10(Double($0) / 50) })  // 1e-4 ... 1e-2
        let chart = LineChart(series: [ChartSeries(name: "lr", source: s, style: .plain)], steps: 0...100, scale: .log)
        let b = render(chart, 30, 8)
        #expect(yLabels(b) == ["0.01", "1e-3", "1e-4"])
        // A narrow range gets 1 and 3 multiples.
        let n = PointSeries(start: 0, values: (0...100).map { 1e-4 + 2.2e-4 * Double($0) / 100 })
        let b2 = render(LineChart(series: [ChartSeries(name: "lr", source: n, style: .plain)], steps: 0...100, scale: .log), 30, 8)
        #expect(yLabels(b2) == ["3e-4", "1e-4"])
    }

    @Test func theTopRowNamesItsValueWhenNoTickFallsOnIt() {
        // LR and loss charts of many ranges and heights, linear and log: the top row always has a label (their ticks
        // often all sat below it, so the highest value on screen could not be read), and it is no more than the
        // axis's top, so it stays true of the row it names.
        for scale in [AxisScale.linear, .log] {
            for hi in [3.2e-4, 7e-4, 1.3e-3, 0.37, 2.6, 45] {
                for height in [6, 8, 12, 20] {
                    let s = PointSeries(start: 0, values: (0...100).map { hi * (0.3 + 0.7 * Double($0) / 100) })
                    let chart = LineChart(series: [ChartSeries(name: "lr", source: s, style: .plain)], steps: 0...100, scale: scale)
                    let rows = render(chart, 40, height).lines()
                    #expect(rows[0].contains("┤"), "\(scale) top \(hi), \(height) rows: \(rows)")
                    let top = rows[0].split(separator: "┤").first.map { $0.trimmingCharacters(in: .whitespaces) }
                    let range = chart.axisRange()!
                    let axisTop = scale == .log ? pow10(range.hi) : range.hi
                    #expect(top.flatMap(Double.init).map { $0 <= axisTop * (1 + 1e-9) } == true, "\(top ?? "")")
                }
            }
        }
        // An axis whose ticks already reach the top row is left as it was.
        let full = PointSeries(start: 0, values: (0...100).map { Double($0) / 100 })
        #expect(yLabels(render(LineChart(series: [ChartSeries(name: "s", source: full, style: .plain)], steps: 0...100), 30, 12)) ==
                ["1", "0.75", "0.5", "0.25", "0"])
    }

    @Test func tickLabelFormatting() {
        #expect(Ticks.label(0.25) == "0.25")
        #expect(Ticks.label(1e-3) == "1e-3")
        #expect(Ticks.label(3e-4) == "3e-4")
        #expect(Ticks.label(0.01) == "0.01")
        #expect(Ticks.label(1) == "1")
        #expect(Ticks.label(1500) == "1500")
        #expect(Ticks.label(25_000) == "25k")
        #expect(Ticks.label(0) == "0")
        #expect(Ticks.label(-0.5) == "-0.5")
        #expect(Ticks.stepLabel(950) == "950")
        #expect(Ticks.stepLabel(1500) == "1.5k")
        #expect(Ticks.stepLabel(2_000_000) == "2M")
        #expect(Ticks.linear(0, 1, maxCount: 5) == [0, 0.25, 0.5, 0.75, 1])
        #expect(Ticks.linear(0, 1, maxCount: 3) == [0, 0.5, 1])
        #expect(Ticks.integerStep(span: 1000, maxCount: 5) == 200)
    }

    @Test func markersPointsAndPlannedSegment() {
        let actual = PointSeries(start: 0, values: Array(repeating: 1.0, count: 51))
        let planned = PointSeries(start: 50, values: Array(repeating: 1.0, count: 51))
        let dim = Style(flags: .dim)
        let chart = LineChart(series: [ChartSeries(name: "planned", source: planned, style: dim),
                                       ChartSeries(name: "lr", source: actual, style: .plain)],
                              points: [ChartPoint(step: 20, value: 1.0, style: Style(flags: .bold))],
                              markers: [ChartMarker(step: 80, style: Style(flags: .underline))],
                              steps: 0...100, yBounds: 0...2, showYAxis: false, showXAxis: false)
        let b = render(chart, 20, 4)
        // Marker: ▾ on the top row at step 80's column, │ below it where there are no dots.
        let col = 80 * 40 / 101 / 2
        #expect(b[col, 0].symbol == "▾")
        #expect(b[col, 3].symbol == "│")
        // Point at step 20.
        let pcol = 20 * 40 / 101 / 2
        #expect(b[pcol, 1].symbol == "●" || b[pcol, 2].symbol == "●")
        // Planned part is dim, actual part is not.
        let row = (0..<4).first { b[2, $0].symbol != " " }!
        #expect(!b[2, row].flags.contains(.dim))
        #expect(b[17, row].flags.contains(.dim))
    }

    @Test func emptyChartSaysWaiting() {
        let chart = LineChart(series: [], steps: 0...10)
        #expect(render(chart, 30, 5).text.contains("waiting for data"))
    }

    @Test func stepColumnsPartitionSteps() {
        for (first, last, count) in [(0, 9, 4), (0, 99, 7), (5, 6, 10), (0, 9_999, 80)] {
            let c = StepColumns(first: first, last: last, count: count)
            var covered: [Int] = []
            for j in 0..<count { if let r = c.steps(ofColumn: j) { covered += Array(r); for s in r { #expect(c.column(of: s) == j) } } }
            #expect(covered == Array(first...last))
        }
    }
}

func pow10(_ x: Double) -> Double {
    var r = 1.0
    let n = Int(x.rounded(.down))
    for _ in 0..<abs(n) { r *= 10 }
    if n < 0 { r = 1 / r }
    let f = x - Double(n)
    return r * exp10(f)
}

func exp10(_ f: Double) -> Double {
    // 10^f for f in [0, 1) by series of e^(f ln 10).
    let y = f * 2.302585092994046
    var term = 1.0, sum = 1.0
    for k in 1..<30 { term *= y / Double(k); sum += term }
    return sum
}
