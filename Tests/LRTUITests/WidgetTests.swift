import Testing
import LRLog
import LRTUI

@Suite struct WidgetTests {
    let palette = Palette(theme: .builtinDefault, depth: .truecolor)

    @Test func blockDrawsFrameAndTitle() {
        var b = Buffer(width: 16, height: 4)
        Block(title: "loss", rightTitle: "0.5").render(Paragraph(["hello"]), into: &b, area: b.area)
        #expect(b.lines() == [
            "╭─ loss ─ 0.5 ─╮",
            "│hello         │",
            "│              │",
            "╰──────────────╯",
        ])
    }

    @Test func helpOverlayListsEveryKey() {
        // 57 keys since `d` (detach): two columns of 29 rows, framed.
        var b = Buffer(width: 100, height: 31)
        HelpOverlay(palette: palette).render(into: &b, area: b.area)
        let text = b.text
        for binding in KeyMap.bindings {
            #expect(text.contains(binding.help), "help lacks '\(binding.help)'")
            for key in binding.keys {
                let label = key.description
                let found = b.lines().contains { line in
                    line.contains(" " + label + " ") || line.contains("│ " + label)
                }
                #expect(found, "help lacks key '\(label)'")
            }
        }
        // Every action of the brief has a key.
        for (key, action) in [(Key.space, KeyAction.togglePause), (.char("n"), .step), (.char("+"), .scaleLR(1.1)),
                              (.char("-"), .scaleLR(1 / 1.1)), (.char("]"), .scaleLR(2)), (.char("["), .scaleLR(0.5)),
                              (.char(":"), .prompt), (.char("r"), .releaseLR), (.char("R"), .resetLR),
                              (.char("s"), .schedulerMenu), (.char("w"), .warmup), (.char("c"), .checkpoint),
                              (.char("u"), .rollback), (.char("g"), .cycleGroup), (.char("l"), .toggleLRScale),
                              (.char("z"), .cycleZoom), (.char("e"), .cycleSmoothing), (.char("t"), .nextTheme),
                              (.char("?"), .help), (.char("q"), .quit), (.escape, .close)] {
            #expect(KeyMap.action(for: key) == action)
        }
        // Keys are not bound twice.
        let all = KeyMap.bindings.flatMap(\.keys)
        #expect(Set(all).count == all.count)
    }

    @Test func helpFitsTheMinimumSize() {
        var b = Buffer(width: 60, height: 16)
        HelpOverlay(palette: palette).render(into: &b, area: b.area)
        #expect(b.text.contains("pause / resume"))
        #expect(b.text.contains("quit"))
    }

    @Test func tooSmallMessage() {
        var b = Buffer(width: 58, height: 3)
        TooSmallMessage(required: (60, 18), actual: (58, 3)).render(into: &b, area: b.area)
        #expect(b.trimmedLines() == ["", "    terminal too small: need at least 60x18, have 58x3", ""])
    }

    @Test func promptEditingAndHistory() {
        var p = PromptState(history: ["lr 1e-3", "pause"])
        for k in Key.sequence("lr 3e-4") { _ = p.handle(k) }
        #expect(p.text == "lr 3e-4")
        _ = p.handle(.left); _ = p.handle(.left); _ = p.handle(.backspace)
        #expect(p.text == "lr 3-4" && p.cursor == 4)
        _ = p.handle(.char("e"))
        #expect(p.text == "lr 3e-4")
        // History: up goes to the newest, then older; down comes back to the draft.
        _ = p.handle(.up)
        #expect(p.text == "pause")
        _ = p.handle(.up)
        #expect(p.text == "lr 1e-3")
        _ = p.handle(.up)
        #expect(p.text == "lr 1e-3")
        _ = p.handle(.down)
        #expect(p.text == "pause")
        _ = p.handle(.down)
        #expect(p.text == "lr 3e-4")
        #expect(p.handle(.enter) == .submit("lr 3e-4"))
        #expect(p.history.last == "lr 3e-4")
        #expect(p.handle(.escape) == .cancel)
        var empty = PromptState()
        #expect(empty.handle(.backspace) == .cancel)
        #expect(empty.handle(.enter) == .cancel)
    }

    @Test func promptShowsHintAndInlineError() {
        var p = PromptState(text: "lr abc", hint: "lr 1.00e-3")
        var b = Buffer(width: 40, height: 1)
        PromptView(state: p, palette: palette).render(into: &b, area: b.area)
        #expect(b.lines() == [":lr abc                       lr 1.00e-3"])
        #expect(b[7, 0].flags.contains(.reverse))  // the cursor
        p.error = "bad value 'abc'"
        var one = Buffer(width: 40, height: 1)
        PromptView(state: p, palette: palette).render(into: &one, area: one.area)
        #expect(one.trimmedLines() == [":lr abc   ✗ bad value 'abc'"])
        #expect(one[10, 0].fg == palette.error.fg)
        var two = Buffer(width: 40, height: 2)
        PromptView(state: p, palette: palette).render(into: &two, area: two.area)
        #expect(two.trimmedLines() == ["✗ bad value 'abc'", ":lr abc"])
        // Typing clears the error.
        _ = p.handle(.backspace)
        #expect(p.error == nil)
    }

    @Test func schedulerMenuProducesASpec() {
        var m = SchedulerMenuState(kinds: FakeSource.kinds)
        #expect(m.selectedKind?.name == "constant")
        #expect(m.spec == "constant")
        _ = m.handle(.down)
        #expect(m.spec == "cosine:T_max=1000,eta_min=0")
        _ = m.handle(.tab)
        #expect(m.focus == .field(0))
        for _ in 0..<4 { _ = m.handle(.backspace) }
        for k in Key.sequence("2000") { _ = m.handle(k) }
        _ = m.handle(.tab)
        _ = m.handle(.ctrl("u"))
        for k in Key.sequence("1e-5") { _ = m.handle(k) }
        #expect(m.handle(.enter) == .apply("cosine:T_max=2000,eta_min=1e-5"))
        // Edits are kept per kind; the other kind has its defaults.
        _ = m.handle(.tab)  // back to the list
        #expect(m.focus == .list)
        _ = m.handle(.down)
        #expect(m.spec == "step:step_size=100,gamma=0.1")
        _ = m.handle(.up)
        #expect(m.spec == "cosine:T_max=2000,eta_min=1e-5")
        #expect(m.handle(.escape) == .cancel)
        // Preselected from the current spec.
        let cur = SchedulerMenuState(kinds: FakeSource.kinds, current: "step:step_size=30,gamma=0.5")
        #expect(cur.spec == "step:step_size=30,gamma=0.5")
        // Drawn.
        var b = Buffer(width: 70, height: 14)
        SchedulerMenuView(state: cur, palette: palette).render(into: &b, area: b.area)
        #expect(b.text.contains("▸ step"))
        #expect(b.text.contains("step_size = 30"))
        #expect(b.text.contains("sched step:step_size=30,gamma=0.5"))
    }

    @Test func sparklineAndGauge() {
        var b = Buffer(width: 8, height: 1)
        Sparkline(values: [0, 1, 2, 3, 4, 5, 6, 8]).render(into: &b, area: b.area)
        #expect(b.lines() == [" ▁▂▃▄▅▆█"])
        var tall = Buffer(width: 3, height: 2)
        Sparkline(values: [2, 4, nil]).render(into: &tall, area: tall.area)
        #expect(tall.lines() == ["  █ ".prefix(3).description, "██ "].map { String($0) } || tall.lines() == [" █ ", "██ "])
        var g = Buffer(width: 14, height: 1)
        Gauge(ratio: 0.5).render(into: &g, area: g.area)
        #expect(g.lines() == ["█████░░░░░ 50%"])
        var g2 = Buffer(width: 10, height: 1)
        Gauge(ratio: 0.3, label: "").render(into: &g2, area: g2.area)
        #expect(g2.lines() == ["███░░░░░░░"])
    }

    @Test func eventListLatestFirstColouredByKind() {
        let events = [
            EventRecord(step: 10, kind: .command, text: "lr *2", lrsBefore: [1e-3], lrsAfter: [2e-3], wallTime: 1),
            EventRecord(step: 20, kind: .error, text: "lr abc", lrsBefore: [], lrsAfter: [], message: "bad value", wallTime: 2),
            EventRecord(step: 30, kind: .checkpoint, text: "ckpt", lrsBefore: [], lrsAfter: [], wallTime: 3),
            EventRecord(step: 40, kind: .guardTrip, text: "guard", lrsBefore: [1e-3], lrsAfter: [5e-4], message: "loss spike", wallTime: 4),
            EventRecord(step: 50, kind: .rollback, text: "rollback", lrsBefore: [], lrsAfter: [], message: "to step 30", wallTime: 5),
        ]
        var b = Buffer(width: 44, height: 6)
        EventList(events: events, palette: palette).render(into: &b, area: b.area)
        // Every token named: the LR change says it is the LR, the message follows after a dot.
        #expect(b.trimmedLines() == [
            "50 ↺ rollback  to step 30",
            "40 ! guard  lr 1.00e-3→5.00e-4 · loss spike",
            "30 ◆ ckpt",
            "20 ✗ lr abc  bad value",
            "10 › lr *2  lr 1.00e-3→2.00e-3",
            "",
        ])
        // Two groups: each changed group by name, never an unexplained "+1".
        let two = EventRecord(step: 60, kind: .command, text: "lr *2", lrsBefore: [1e-3, 5e-4], lrsAfter: [2e-3, 1e-3], wallTime: 6)
        #expect(EventList.detail(two, groups: ["body", "head"]) == "lr body 1.00e-3→2.00e-3, head 5.00e-4→1.00e-3")
        let one = EventRecord(step: 60, kind: .command, text: "lr head *2", lrsBefore: [1e-3, 5e-4], lrsAfter: [1e-3, 1e-3], wallTime: 6)
        #expect(EventList.detail(one, groups: ["body", "head"]) == "lr head 5.00e-4→1.00e-3 (other groups unchanged)")
        #expect(b[3, 3].fg == palette.error.fg)
        #expect(b[3, 2].fg == palette.ok.fg)
        #expect(b[3, 4].fg == palette.highlight.fg)
        #expect(b[3, 1].fg == palette.warn.fg)
        #expect(b[3, 0].fg == palette.marker.fg)
    }

    @Test func keyValueList() {
        var b = Buffer(width: 20, height: 2)
        KeyValueList(items: [("step", [Span("1,234")]), ("lr body", [Span("3.00e-4"), Span(" HELD")])]).render(into: &b, area: b.area)
        #expect(b.lines() == ["step    1,234       ", "lr body 3.00e-4 HELD"])
    }

    @Test func formatting() {
        #expect(Format.lr(3e-4) == "3.00e-4")
        #expect(Format.lr(0.05) == "0.0500")
        #expect(Format.sci(9.999e-4) == "1.00e-3")
        #expect(Format.grouped(1_234_567) == "1,234,567")
        #expect(Format.compact(12_345) == "12k")
        #expect(Format.compact(1_500) == "1.5k")
        #expect(Format.duration(45) == "45s")
        #expect(Format.duration(723) == "12m03s")
        #expect(Format.duration(3_720) == "1h02m")
        #expect(Format.metric(0.54321) == "0.5432")
        #expect(Format.metric(.nan) == "nan")
        #expect(Format.percent(0.8125) == "81.3%" || Format.percent(0.8125) == "81.2%")
    }
}
