import Testing
import Foundation

/// `lrtop train --headless` and friends, run as a user runs them.
@Suite(.serialized) struct TrainCLITests {
    @Test func helpListsEverySubcommand() throws {
        let out = try lrtop(["--help"])
        #expect(out.status == 0)
        for sub in ["train", "replay", "watch", "compare", "export", "bench", "themes"] {
            #expect(out.stdout.contains(sub), "help lacks \(sub)")
        }
    }

    /// Issue #21 item 3: `sched` says the lengths it builds (40 steps into 100, cosine is `T_max=60`), in the event's
    /// message (the answer's words) and its result alike, and builds them: onecycle over the 40 steps left ends at
    /// its floor on the run's last step.
    @Test func aSchedulerSwitchSaysTheLengthsItBuilds() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@40 sched cosine\n@60 sched onecycle\n".write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "0", "--max-steps", "100",
                             "--batch-size", "32", "--hidden", "8", "--commands", "s.txt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("r/run.jsonl"))
        let switches = records(log, type: "event").filter { $0["kind"] as? String == "command" }
        #expect(switches.count == 2)
        let built = switches.map { ($0["result"] as? [String: Any])?["scheduler"] as? String ?? "" }
        #expect(built[0] == "cosine:T_max=60,eta_min=0")
        #expect(built[1].hasPrefix("onecycle:total_steps=40,"))
        for (event, spec) in zip(switches, built) {
            let message = event["message"] as? String ?? ""
            #expect(message.contains("now " + spec) && message.contains("steps left"), "\(message)")
        }
        // onecycle from step 60 (LR a) over 40 steps: from a/25 up to a, down to a/25/1e4 at step 100.
        let steps = records(log, type: "step")
        let lr = { (k: Int) in ((steps.first { $0["step"] as? Int == k }?["lrs"] as? [Double]) ?? [])[0] }
        let peak = (switches[1]["lrs_before"] as? [Double] ?? [0])[0]
        #expect(abs(lr(61) - peak / 25) < 1e-9 * peak)
        #expect(lr(100) < peak / 25 / 1000, "onecycle ends at its floor on the run's last step: \(lr(100)) vs \(peak)")
    }

    /// Issue #21 item 7: under a schedule that computes the LR from its step count (onecycle, cyclic, warm_restarts)
    /// `lr X` would last one step: it is refused with the reason, and once the LR is held it holds.
    @Test func anOverrideAnAbsoluteScheduleWouldUndoIsRefusedUnlessHeld() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@20 lr 1e-4\n@30 lr hold\n@30 lr 1e-4\n@45 sched warm_restarts:T_0=10\n@50 lr *0.5\n"
            .write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "0", "--max-steps", "60",
                             "--batch-size", "32", "--hidden", "8", "--scheduler", "onecycle:max_lr=0.01", "--commands", "s.txt",
                             "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("r/run.jsonl"))
        let events = records(log, type: "event").filter { ["command", "error"].contains($0["kind"] as? String) }
        #expect(events.map { $0["kind"] as? String ?? "" } == ["error", "command", "command", "command", "command"],
                "\(events)")
        let why = events[0]["message"] as? String ?? ""
        #expect(why.hasPrefix("onecycle computes the LR from its step count, so this LR would last one step"), "\(why)")
        #expect(why.contains("'lr hold' first"))
        // Held, the LR set holds step after step.
        let steps = records(log, type: "step")
        for k in 31...45 {
            #expect((steps.first { $0["step"] as? Int == k }?["lrs"] as? [Double])?.first == 1e-4, "step \(k)")
        }
    }

    /// While a ramp writes the LR (the schedule's warmup, or a `warmup N` re-warm), `lr X` would not hold: it is
    /// refused with the reason and what to type instead; once the group is held, the LR set holds through the
    /// schedule's ramp. (spec/steering_vectors.json's `warmup-ramps-refuse-an-override-unless-held` holds the
    /// Python bridge to the same.)
    @Test func anOverrideARampWouldRaiseIsRefusedUnlessHeld() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@3 lr 1e-3\n@3 lr hold\n@4 lr 1e-3\n@25 lr release\n@25 warmup 10\n@28 lr *0.5\n@36 lr *0.5\n"
            .write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "0", "--max-steps", "60",
                             "--batch-size", "32", "--hidden", "8", "--scheduler", "warmup:steps=20 -> cosine",
                             "--commands", "s.txt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("r/run.jsonl"))
        let events = records(log, type: "event").filter { ["command", "error"].contains($0["kind"] as? String) }
        #expect(events.map { $0["kind"] as? String ?? "" } == ["error", "command", "command", "command", "command", "error", "command"],
                "\(events)")
        guard events.count == 7 else { return }
        let ramp = events[0]["message"] as? String ?? ""
        #expect(ramp.hasPrefix("the schedule's warmup ramp writes the LR until step 20, so this LR would not hold: 'lr hold' first"),
                "\(ramp)")
        let rewarm = events[5]["message"] as? String ?? ""
        #expect(rewarm.hasPrefix("the 'warmup 10' ramp scales the LR the optimizer uses until step 35, so this LR would train at a fraction of itself: set it at step 35"),
                "\(rewarm)")
        // Held, the LR set holds through the schedule's ramp and its milestone.
        let steps = records(log, type: "step")
        func lr(_ k: Int) -> Double? { (steps.first { $0["step"] as? Int == k }?["lrs"] as? [Double])?.first }
        for k in 5...25 { #expect(lr(k) == 1e-3, "step \(k)") }
        // After the re-warm, `lr *0.5` applies: the next step trains at half the schedule's LR.
        if let before = lr(36), let after = lr(37) { #expect(after < 0.55 * before && after > 0.45 * before, "\(before) → \(after)") }
    }

    /// Issue #21 item 13: help texts name the files that exist (bench/twins.py, `head.*`) and an example is one
    /// line, not wrapped into what look like two broken ones.
    @Test func helpTextsCiteWhatExistsAndKeepExamplesWhole() throws {
        let export = try lrtop(["export-weights", "--help"])
        #expect(export.stdout.contains("bench/twins.py") && !export.stdout.contains("parity.py"), "\(export.stdout)")
        #expect(export.stdout.contains("head.weight"))
        #expect(FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent("bench/twins.py").path))
        let compare = try lrtop(["compare", "--help"])
        let example = "lrtop compare --config 'LAMB 4e-3=lamb:lr=4e-3;warmup:steps=1 epoch -> cosine'"
        #expect(compare.stdout.split(separator: "\n").contains { $0.contains(example) }, "\(compare.stdout)")
    }

    @Test func headlessRunWritesItsLogAndCheckpointsAndSaysWhere() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "2", "--hidden", "32",
                             "--batch-size", "64", "--lr", "1e-2"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        // The default run folder is ./runs/DATE_TIME, and the CLI prints it.
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path("runs"))
        #expect(runs.count == 1)
        let runDir = dir.path("runs/\(runs[0])")
        #expect(out.stdout.contains("run folder ") && out.stdout.contains("runs/\(runs[0])"))
        #expect(out.stdout.contains("epoch 2"))
        #expect(out.stdout.contains("completed at step"))
        let log = try readLog(runDir + "/run.jsonl")
        #expect(log.first?["type"] as? String == "header")
        #expect(log.last?["type"] as? String == "end")
        #expect(records(log, type: "step").count == 2 * (6000 / 64))
        #expect(records(log, type: "eval").count == 2)
        let header = log[0]
        #expect((header["config"] as? [String: String])?["optimizer"] == "adamw")
        #expect(header["schema"] as? Int == 2)
        #expect(FileManager.default.fileExists(atPath: runDir + "/checkpoints/final.ckpt"))
    }

    @Test(arguments: [
        (["--lr", "abc"], "--lr"),
        (["--lr=-1"], "invalid --lr -1.0"),
        (["--data", "/nonexistent/folder"], "/nonexistent/folder"),
        (["--optimizer", "adamx"], "unknown optimizer 'adamx'"),
        (["--scheduler", "cosin"], "unknown scheduler 'cosin'"),
        (["--optimizer", "adamw:betas=0.9/1.5"], "Invalid beta parameter at index 1"),
        (["--group", "head.*:lr_scale=abc"], "abc"),
        (["--resume", "/nonexistent.ckpt"], "/nonexistent.ckpt: no such checkpoint file"),
        (["--model", "transformer"], "unknown model 'transformer'"),
        (["--commands", "/nonexistent-script"], "cannot read the commands script"),
        (["--batch-size", "0"], "--batch-size"),
    ])
    func badInputIsOneClearLineAndANonZeroExit(args: [String], message: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--epochs", "1"] + args, in: dir.url)
        #expect(out.status != 0)
        let lines = out.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.contains { $0.contains(message) }, "stderr: \(out.stderr)")
        #expect(lines.first.map { $0.hasPrefix("lrtop: error:") || $0.hasPrefix("Error:") } ?? false, "stderr: \(out.stderr)")
    }

    /// Every option of `TrainOptions` lands in the run's config under its field's name, exactly (a 64-bit seed, an
    /// LR's last digit): the options decode as the config, nothing is copied by hand.
    @Test func everyTrainOptionReachesTheRunsConfigExactly() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless", "--run-dir", "r", "--name", "all-options", "--model", "MLP",
                             "--hidden", "16,8", "--dropout", "0.1", "--data", "synthetic:spirals", "--normalize",
                             "--batch-size", "64", "--epochs", "2", "--max-steps", "5", "--seed", "18446744073709551615",
                             "--optimizer", "sgd", "--lr", "0.30000000000000004", "--weight-decay", "0.001",
                             "--momentum", "0.8", "--group", "head.*:lr_scale=2", "--scheduler", "constant",
                             "--scheduler-interval", "epoch", "--plateau-metric", "train_loss", "--accum-steps", "2",
                             "--clip-grad-norm", "1.5", "--label-smoothing", "0.1", "--eval-every", "3",
                             "--checkpoint-every", "4", "--checkpoint-keep", "2", "--guard-factor", "20",
                             "--on-divergence", "stop"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let header = try readLog(dir.path("r/run.jsonl"))[0]
        #expect(header["seed"] as? UInt64 == UInt64.max)
        let config = try #require(header["config"] as? [String: String])
        let expected = ["name": "all-options", "model": "mlp", "hidden": "16,8", "dropout": "0.1", "data": "synthetic:spirals",
                        "normalize": "true", "batch_size": "64", "epochs": "2", "max_steps": "5",
                        "seed": "18446744073709551615", "optimizer": "sgd", "lr": "0.30000000000000004",
                        "weight_decay": "0.001", "momentum": "0.8", "groups": "head.*:lr_scale=2", "scheduler": "constant",
                        "scheduler_interval": "epoch", "plateau_metric": "train_loss", "accum_steps": "2",
                        "clip_grad_norm": "1.5", "label_smoothing": "0.1", "eval_every": "3", "checkpoint_every": "4",
                        "checkpoint_keep": "2", "guard_factor": "20.0", "guard_action": "stop"]
        for (key, value) in expected { #expect(config[key] == value, "\(key)") }
    }

    @Test func aScriptTypoIsReportedWithItsLineBeforeTraining() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "@10 lr *0.5\n@20 lr 3e-4x\n".write(toFile: dir.path("s.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--commands", "s.txt"], in: dir.url)
        #expect(out.status != 0)
        #expect(out.stderr.contains("s.txt:2: invalid LR '3e-4x'"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("runs")))
    }

    @Test func aBrokenDatasetFileIsNamedInOneLine() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let data = dir.url.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try Data([0, 0, 8, 3, 0, 0, 0, 5]).write(to: data.appendingPathComponent(name))
        }
        let out = try lrtop(["train", "--headless", "--data", data.path], in: dir.url)
        #expect(out.status != 0)
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("-idx"))
    }

    @Test func theUIOnANonTerminalSaysToUseHeadless() throws {
        let out = try lrtop(["train", "--data", "synthetic:spirals"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("--headless"))
    }

    /// Issue #4's acceptance: every kind of intervention from a script, each at its step, with the LR trajectory
    /// it implies, in the run log.
    @Test func aCommandsScriptSteersTheRunAndTheLogShowsEachIntervention() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try """
            @10 lr 0.05
            @20 lr *0.5
            @30 lr release
            @40 lr hold
            @50 lr release
            @60 lr reset
            @70 ckpt
            @80 sched cosine:T_max=40
            @90 warmup 10
            @100 pause
            @100 resume
            @110 rollback
            @115 lr 0.1
            """.write(toFile: dir.path("steer.txt"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--data", "synthetic:spirals", "--batch-size", "32", "--hidden", "32",
                             "--optimizer", "sgd", "--lr", "0.1", "--scheduler", "step:step_size=25,gamma=0.5",
                             "--max-steps", "130", "--commands", "steer.txt", "--log", "run.jsonl", "--run-dir", "r"],
                            in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("run.jsonl"))
        let events = records(log, type: "event")
        func event(_ text: String) -> [String: Any]? { events.first { $0["text"] as? String == text } }
        func lrs(_ e: [String: Any]?, _ key: String) -> Double? { (e?[key] as? [Double])?.first }
        // Steps are 1-based; step n used the LR in force after n-1 steps.
        var lrAtStep: [Int: Double] = [:]
        var firstPass: [Int: Double] = [:]
        for s in records(log, type: "step") {
            let n = s["step"] as! Int, lr = (s["lrs"] as! [Double])[0]
            if lrAtStep[n] == nil { firstPass[n] = lr }
            lrAtStep[n] = lr
        }
        #expect(lrs(event("lr 0.05"), "lrs_before") == 0.1 && lrs(event("lr 0.05"), "lrs_after") == 0.05)
        #expect(event("lr 0.05")?["step"] as? Int == 10)
        #expect(firstPass[11] == 0.05)
        #expect(firstPass[21] == 0.025)                    // scaled
        #expect(firstPass[26] == 0.0125)                   // the StepLR decay at 25 continues from the override
        #expect(firstPass[31] == 0.05)                     // released: the schedule as planned, 0.1 * 0.5^1
        #expect(firstPass[41] == firstPass[40] && firstPass[50] == firstPass[41]) // held through the decay at 50
        #expect(firstPass[51] == 0.025)                    // released at 50: 0.1 * 0.5^2
        #expect(firstPass[61] == 0.1)                      // reset: base LR, schedule restarted
        #expect(firstPass[81] == firstPass[80])            // scheduler switch continues from the current LR
        #expect(firstPass[91]! < firstPass[90]! / 5)       // re-warm starts low ...
        #expect(["pause", "resume", "ckpt", "rollback"].allSatisfy { event($0)?["kind"] as? String == "command" })
        // The latest checkpoint is the one taken automatically before the scheduler switch at 80.
        #expect((event("rollback")?["message"] as? String)?.contains("to step 80") == true)
        // A line that could not apply ('lr nosuchgroup 0.1', 'sched nonsense') now stops the run before it
        // starts (BadCLIInputTests); nothing in this script fails.
        #expect(events.filter { $0["kind"] as? String == "error" }.isEmpty)
        // The risky commands took checkpoints first.
        #expect(events.contains { $0["kind"] as? String == "checkpoint" && ($0["text"] as? String)?.contains("sched cosine") == true })
        // After the rollback to 80, steps 81..110 were trained again, identically up to the scripted changes.
        let stepNumbers = records(log, type: "step").map { $0["step"] as! Int }
        #expect(stepNumbers.filter { $0 == 85 }.count == 2)
        #expect(stepNumbers.filter { $0 == 75 }.count == 1)
        #expect(stepNumbers.last == 130)
    }

    @Test func resumeFromTheCLIGivesTheSameLossesBitForBit() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let common = ["train", "--headless", "--data", "synthetic:spirals", "--batch-size", "32", "--hidden", "32",
                      "--epochs", "2", "--scheduler", "cosine", "--dropout", "0.1", "--checkpoint-every", "150"]
        #expect(try lrtop(common + ["--run-dir", "full"], in: dir.url).status == 0)
        let resumed = try lrtop(["train", "--headless", "--resume", "full/checkpoints/step-00000150.ckpt", "--run-dir", "resumed"],
                                in: dir.url)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let full = records(try readLog(dir.path("full/run.jsonl")), type: "step").filter { ($0["step"] as! Int) > 150 }
        let again = records(try readLog(dir.path("resumed/run.jsonl")), type: "step")
        #expect(again.count == full.count && !again.isEmpty)
        #expect(zip(full, again).allSatisfy { ($0["loss"] as! Double) == ($1["loss"] as! Double) && $0["step"] as! Int == $1["step"] as! Int })
    }

    /// Issue #2's acceptance run: 5 epochs of AdamW on Fashion-MNIST reach at least 86.5% test accuracy.
    @Test(.enabled(if: fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func fashionMNISTReachesTheReferenceAccuracy() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["train", "--headless", "--epochs", "5", "--optimizer", "adamw", "--lr", "1e-3",
                             "--weight-decay", "0.01", "--scheduler", "constant", "--seed", "1"], in: dir.url, timeout: 600)
        #expect(out.status == 0, "\(out.stderr)")
        let line = try #require(out.stdout.split(separator: "\n").first { $0.contains("completed at step 2340") })
        let acc = Double(line.split(separator: "test accuracy ")[1].prefix(while: { $0 != "%" }))!
        #expect(acc >= 86.5, "\(line)")
    }

    @Test func benchPrintsItsFiguresAsJSON() throws {
        let out = try lrtop(["bench", "--data", "synthetic:spirals", "--steps", "50", "--warmup", "5", "--repeats", "1", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        #expect((obj?["samples_per_s"] as? Double ?? 0) > 0)
        #expect(obj?["steps_per_s"] != nil && obj?["threads"] != nil)
    }
}

@Suite struct ConfigFileTests {
    @Test func aConfigFileSetsOptionsAndTheCommandLineWins() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try """
            # the guide's layer-wise LRs, from a file
            optimizer = sgd:momentum=0.9
            lr = 0.05
            group = head.*:lr_scale=2
            scheduler = warmup:steps=20 -> cosine
            epochs = 1
            data = synthetic:spirals
            """.write(toFile: dir.path("run.conf"), atomically: true, encoding: .utf8)
        let out = try lrtop(["train", "--headless", "--config", "run.conf", "--epochs", "2", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        let log = try readLog(dir.path("r/run.jsonl"))
        let config = log[0]["config"] as! [String: String]
        #expect(config["optimizer"] == "sgd:momentum=0.9" && config["scheduler"] == "warmup:steps=20 -> cosine")
        #expect(config["epochs"] == "2")
        #expect(log[0]["groups"] as? [String] == ["default", "head"])
        let first = records(log, type: "step")[0]["lrs"] as! [Double]
        #expect(abs(first[1] - 2 * first[0]) < 1e-12)

        try "optimizer = sgd\nnot an option line\n".write(toFile: dir.path("bad.conf"), atomically: true, encoding: .utf8)
        let bad = try lrtop(["train", "--headless", "--config", "bad.conf"], in: dir.url)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("bad.conf:2: expected 'option = value'"))
    }
}

@Suite struct CompareCLITests {
    @Test func compareRunsTheConfigurationsPrintsTheTableAndWritesReplayableLogs() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = try lrtop(["compare", "--epochs", "2", "--seeds", "2", "--data", "synthetic:spirals", "--hidden", "32",
                             "--only", "adamw,lamb", "--config", "SGD fast=sgd:lr=0.2,momentum=0.9;cosine",
                             "--target", "80", "--headless", "--out", "cmp"], in: dir.url)
        #expect(out.status == 0, "\(out.stderr)")
        for row in ["| AdamW ", "| AdamW + Cosine", "| LAMB + Warmup + Cosine"] { #expect(out.stdout.contains(row)) }
        #expect(!out.stdout.contains("| SGD + StepLR"))       // --only filters; the added config is not in it
        #expect(out.stdout.contains("top-1 (mean ± sd)") && out.stdout.contains("epochs to 80%"))
        let logs = try FileManager.default.contentsOfDirectory(atPath: dir.path("cmp")).sorted()
        #expect(logs.count == 6)
        #expect(out.stdout.contains("lrtop replay "))
        let summary = try lrtop(["replay", "--summary"] + logs.map { dir.path("cmp/\($0)/run.jsonl") })
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.split(separator: "\n").count == 7)

        let bad = try lrtop(["compare", "--config", "no equals sign", "--headless"], in: dir.url)
        #expect(bad.status != 0 && bad.stderr.contains("expected NAME=OPTIMIZER_SPEC;SCHEDULER_SPEC"))
    }
}
