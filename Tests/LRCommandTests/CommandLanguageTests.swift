import Testing
import LRCommand

@Suite struct CommandLanguageTests {
    @Test func parsesEveryVerb() throws {
        #expect(try CommandParser.parse("lr 3e-4") == .lr(group: nil, .set(3e-4)))
        #expect(try CommandParser.parse("lr head 1e-3") == .lr(group: "head", .set(1e-3)))
        #expect(try CommandParser.parse("lr *0.5") == .lr(group: nil, .scale(0.5)))
        #expect(try CommandParser.parse("lr /2") == .lr(group: nil, .scale(0.5)))
        #expect(try CommandParser.parse("lr x2") == .lr(group: nil, .scale(2)))
        #expect(try CommandParser.parse("lr hold") == .lr(group: nil, .hold))
        #expect(try CommandParser.parse("lr head release") == .lr(group: "head", .release))
        #expect(try CommandParser.parse("lr reset") == .lr(group: nil, .reset))
        #expect(try CommandParser.parse("sched warmup:steps=100 -> cosine") == .sched("warmup:steps=100 -> cosine"))
        #expect(try CommandParser.parse("warmup 200") == .warmup(200))
        #expect(try CommandParser.parse("pause") == .pause)
        #expect(try CommandParser.parse("resume") == .resume)
        #expect(try CommandParser.parse("step") == .step(1))
        #expect(try CommandParser.parse("step 5") == .step(5))
        #expect(try CommandParser.parse("stop") == .stop)
        #expect(try CommandParser.parse("ckpt") == .checkpoint)
        #expect(try CommandParser.parse("rollback") == .rollback)
        #expect(try CommandParser.parse("  eval  ") == .eval)
    }

    @Test(arguments: [
        ("lr -1", "invalid LR '-1'"),
        ("lr nan", "invalid LR 'nan'"),
        ("lr abc", "invalid LR 'abc'"),
        ("lr inf", "invalid LR 'inf'"),
        ("lr *0", "invalid LR factor '0'"),
        ("lr", "'lr' needs a value"),
        ("warmup x", "'warmup' needs a positive number"),
        ("sched", "'sched' needs a scheduler spec"),
        ("jump 5", "unknown command 'jump'"),
        ("pause now", "'pause' takes no argument"),
        ("", "empty command"),
    ])
    func rejectsBadCommandsWithActionableMessages(text: String, message: String) {
        #expect(throws: CommandError.self) { try CommandParser.parse(text) }
        do { _ = try CommandParser.parse(text) } catch {
            #expect(error.description.contains(message), "got: \(error.description)")
        }
    }

    @Test func scriptParsesStepsInOrderAndReportsTyposWithLineNumbers() throws {
        let script = try CommandScript.parse("""
            # comment
            @500 lr *0.1
            @100 pause   # inline comment
            @100 resume

            @800 sched plateau:patience=2
            """, name: "s.txt")
        #expect(script.entries.map(\.step) == [100, 100, 500, 800])
        #expect(script.entries.map(\.text) == ["pause", "resume", "lr *0.1", "sched plateau:patience=2"])

        #expect(throws: CommandError("s.txt:2: invalid LR 'abc': expected a number like 3e-4, or use 'lr 3e-4', 'lr *0.5', 'lr /2', 'lr hold', 'lr release', 'lr reset', or 'lr GROUP ...'")) {
            try CommandScript.parse("@1 lr 1\n@2 lr abc", name: "s.txt")
        }
        #expect(throws: CommandError.self) { try CommandScript.parse("lr 1", name: "s.txt") }
        #expect(throws: CommandError.self) { try CommandScript.parse("@x lr 1", name: "s.txt") }
    }

    @Test func riskyCommandsAreSchedulerSwitchesResetsAndLargeJumps() {
        #expect(Command.sched("cosine").isRisky(currentLRs: [1e-3]))
        #expect(Command.lr(group: nil, .reset).isRisky(currentLRs: [1e-3]))
        #expect(Command.lr(group: nil, .scale(10)).isRisky(currentLRs: [1e-3]))
        #expect(!Command.lr(group: nil, .scale(1.1)).isRisky(currentLRs: [1e-3]))
        #expect(Command.lr(group: nil, .set(1e-1)).isRisky(currentLRs: [1e-3]))
        #expect(!Command.lr(group: nil, .set(1.5e-3)).isRisky(currentLRs: [1e-3]))
        #expect(!Command.pause.isRisky(currentLRs: [1e-3]))
    }
}
