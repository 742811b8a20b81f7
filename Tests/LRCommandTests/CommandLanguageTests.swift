import Foundation
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

    /// A key sends a command as a value; its text (the run log's `text`, the key bar's `› lr *2`) is the command
    /// written back, which the parser reads as the same command.
    @Test func aCommandWrittenBackParsesAsItself() throws {
        let texts = ["lr 3e-4", "lr head 1e-3", "lr *2", "lr /2", "lr /1.1", "lr *1.1", "lr x3", "lr hold", "lr 1 release",
                     "lr reset", "sched warmup:steps=100 -> cosine", "warmup 200", "pause", "resume", "step", "step 5",
                     "stop", "ckpt", "rollback", "eval", "adopt 2", "drop", "find-lr", "find-lr start=1e-6 end=1 steps=50",
                     "fork lr=1e-3,*0.5,/2 steps=300 jobs=2", "fork 'sched cosine; lr *0.5' | '' steps=20"]
        for text in texts {
            let command = try CommandParser.parse(text)
            #expect(try CommandParser.parse(command.description).description == command.description, "\(text)")
            if case .fork = command { continue }  // branch labels are the texts as typed
            #expect(try CommandParser.parse(command.description) == command, "\(text) → \(command)")
        }
        #expect(Command.lr(group: nil, .scale(2)).description == "lr *2")
        #expect(Command.lr(group: nil, .scale(1 / 1.1)).description == "lr /1.1")
        #expect(Command.lr(group: "head", .set(0.0003)).description == "lr head 0.0003")
        #expect(try CommandParser.parse("fork lr=1e-3,3e-4 steps=300").description == "fork lr=0.001,0.0003 steps=300")
    }

    /// The record form (the run log's "command") reads back as the command, and a record the language would
    /// refuse is refused: a file never hands the trainer or the UI a command the parser could not make.
    @Test func aCommandRecordReadsBackAndABadOneIsRefused() throws {
        for text in ["lr head *0.5", "sched cosine:T_max=200", "step 3", "adopt 1", "find-lr steps=50", "pause"] {
            let command = try CommandParser.parse(text)
            #expect(try JSONDecoder().decode(Command.self, from: JSONEncoder().encode(command)) == command)
        }
        for bad in [#"{"verb":"lr","change":"set","value":-1}"#, #"{"verb":"lr","change":"scale","value":0}"#,
                    #"{"verb":"warmup","count":0}"#, #"{"verb":"fly"}"#, #"{"verb":"lr","change":"spin"}"#,
                    #"{"verb":"lr","group":"a b","change":"hold"}"#, #"{"verb":"sched","spec":""}"#,
                    #"{"verb":"find-lr","start":1,"end":0.1,"count":100}"#, #"{"verb":"adopt","branch":0}"#,
                    #"{"verb":"fork","steps":0,"jobs":1,"branches":[{"label":"x","commands":[]}]}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(Command.self, from: Data(bad.utf8)) }
        }
    }
}
