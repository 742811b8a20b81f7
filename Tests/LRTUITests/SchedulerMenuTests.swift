import Testing
import LRTUI

/// The `s` menu as drawn: nothing cut at 80 columns, defaults shown but left to the scheduler, sequences.
@Suite struct SchedulerMenuTests {
    let palette = Palette(theme: .builtinDefault, depth: .truecolor)

    /// As long as the real catalogue's longest texts, and longer.
    let kinds: [SchedulerKind] = [
        SchedulerKind(name: "cosine", summary: "cosine annealing from the LR to eta_min over T_max steps", parameters: [
            SchedulerParameter(name: "T_max", defaultValue: "", help: "steps to the minimum", placeholder: "rest of run"),
            SchedulerParameter(name: "eta_min", defaultValue: "", help: "the minimum LR", placeholder: "0"),
        ]),
        SchedulerKind(name: "A -> B", summary: "parts one after another (PyTorch's SequentialLR); each starts where the "
                      + "previous one's length ends, or at @N", parameters: [
            SchedulerParameter(name: "spec", defaultValue: "warmup:steps=100 -> cosine",
                               help: "e.g. warmup:steps=500 -> cosine, or linear:total_iters=100 -> @300 exp:gamma=0.99"),
        ], isSequence: true),
        SchedulerKind(name: "warm_restarts", summary: "multiply the LR by factor when --plateau-metric stops improving",
                      parameters: [
            SchedulerParameter(name: "final_div_factor", defaultValue: "", help: "min for losses, max for accuracy",
                               placeholder: "1e4"),
            SchedulerParameter(name: "min_lr", defaultValue: "", help: "lower bound (or one per group)", placeholder: "0"),
            SchedulerParameter(name: "step_size_down", defaultValue: "", help: "steps going down",
                               placeholder: "step_size_up"),
        ]),
    ]

    /// The menu's text at 80×24, one string per screen row, with runs of spaces and the box's borders folded.
    func screen(_ state: SchedulerMenuState) -> (rows: [String], text: String) {
        var b = Buffer(width: 80, height: 24)
        SchedulerMenuView(state: state, palette: palette).render(into: &b, area: b.area.inset(top: 1, bottom: 1))
        let rows = b.lines()
        let folded = rows.map { row in
            row.replacingOccurrences(of: "│", with: " ").split(separator: " ").joined(separator: " ")
        }
        return (rows, folded.joined(separator: " "))
    }

    /// The words of `text` appear in this order on screen (wrapped lines read left to right, top to bottom, with the
    /// kinds list between them).
    func showsWhole(_ text: String, in screen: String) -> Bool {
        var rest = Substring(screen)
        for word in text.split(separator: " ") {
            guard let r = rest.range(of: word) else { return false }
            rest = rest[r.upperBound...]
        }
        return true
    }

    @Test func nothingIsCutAt80Columns() {
        var state = SchedulerMenuState(kinds: kinds)
        for kind in kinds {
            let (rows, text) = screen(state)
            #expect(!rows.joined().contains("…"), "cut text for \(kind.name):\n\(rows.joined(separator: "\n"))")
            #expect(showsWhole(kind.summary, in: text), "\(kind.name)'s summary:\n\(rows.joined(separator: "\n"))")
            for p in kind.parameters {
                #expect(showsWhole(p.help, in: text), "\(kind.name).\(p.name)'s help:\n\(rows.joined(separator: "\n"))")
            }
            #expect(text.contains("↑↓ kind tab fields type to edit enter apply esc cancel"))
            #expect(rows.allSatisfy { $0.cellWidth <= 80 })
            _ = state.handle(.down)
        }
    }

    @Test func emptyFieldsShowTheDefaultAndLeaveItToTheScheduler() {
        var state = SchedulerMenuState(kinds: kinds)
        #expect(state.spec == "cosine")
        let (rows, _) = screen(state)
        #expect(rows.contains { $0.contains("T_max = rest of run") && $0.contains("steps to the minimum") })
        #expect(rows.contains { $0.contains("eta_min = 0") })
        _ = state.handle(.tab)
        _ = state.handle(.tab)
        for k in Key.sequence("1e-5") { _ = state.handle(k) }
        #expect(state.spec == "cosine:eta_min=1e-5")
        #expect(screen(state).rows.contains { $0.contains("eta_min = 1e-5▏") })
    }

    @Test func aSequenceIsOneFieldHoldingTheWholeSpec() {
        var state = SchedulerMenuState(kinds: kinds)
        _ = state.handle(.down)
        #expect(state.selectedKind?.name == "A -> B")
        #expect(state.spec == "warmup:steps=100 -> cosine")
        #expect(state.handle(.enter) == .apply("warmup:steps=100 -> cosine"))
        _ = state.handle(.tab)
        for k in Key.sequence(" -> @900 constant") { _ = state.handle(k) }
        #expect(state.spec == "warmup:steps=100 -> cosine -> @900 constant")
        let (rows, text) = screen(state)
        #expect(rows.contains { $0.contains("spec = warmup:steps=100 -> cosine -> @900 constant▏") })
        #expect(text.contains("sched warmup:steps=100 -> cosine -> @900 constant"))
    }

    @Test func aLongValueKeepsItsEndInView() {
        var state = SchedulerMenuState(kinds: kinds)
        _ = state.handle(.tab)
        for k in Key.sequence("123456789012345678901234") { _ = state.handle(k) }
        let row = screen(state).rows.first { $0.contains("T_max = ") } ?? ""
        #expect(row.contains("…") && row.contains("1234▏"))
    }

    /// The running schedule is a sequence (the default warmup + cosine): no kind is preselected with half of it.
    @Test func aSequenceIsNotPreselectedAsItsFirstPart() {
        let state = SchedulerMenuState(kinds: kinds + [SchedulerKind(name: "warmup", parameters: [
            SchedulerParameter(name: "steps", defaultValue: "10"),
            SchedulerParameter(name: "start_factor", defaultValue: ""),
        ])], current: "warmup:steps=5,start_factor=0.2 -> @5 cosine:T_max=95,eta_min=0")
        #expect(state.selectedKind?.name == "cosine")
        #expect(state.spec == "cosine")
    }
}
