import Foundation
import LRLog
import Testing

@Suite struct CSVTests {
    @Test func lightningMetricsBecomeARun() throws {
        let url = fixturesDir.appendingPathComponent("lightning_csv/run/version_0/metrics.csv")
        let run = try CSVReader.readRun(at: url, name: "version_0")
        #expect(run.warnings.isEmpty)
        #expect(run.mapping == TagMapping(loss: "train_loss", lrs: ["lr-AdamW"], evalAccuracy: "val_acc", epoch: "epoch"))
        #expect(run.groups == ["AdamW"])
        // LR and loss come on different rows of the same step; merged, each step has both.
        #expect(run.steps.step == Array(0...63))
        #expect(run.steps.lrs[0][0] == 0.01 && run.steps.lrs[0][1] == 0.009993147673772868)
        #expect(run.steps.loss[0] == Float(0.6812036037445068) && run.steps.loss[63] == Float(0.27916035056114197))
        #expect(run.steps.epoch[63] == 3)
        #expect(!run.steps.loss.contains { $0.isNaN } && !run.steps.lrs[0].contains { $0.isNaN })
        #expect(run.evals.last?.step == 63 && run.evals.last?.accuracy == 0.947265625 && run.evals.last!.loss.isNaN)
    }

    @Test func sparseQuotedAndBadRows() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("metrics.csv")
        let lines = [
            #""epoch","lr, main",step,"note ""x""",train_loss\#r"#,
            ",0.1,0,,\r",
            #"0,,0,"a, ""quoted"""#,
            #"two-line note",2.5\#r"#,
            "0,,1,,2.25",
            "0,,1,2",
            ",,zero,,1.0",
            "",
            "1,0.05,2,,NaN",
            "1,,3,,inf",
            "1,,4,,-Infinity",
            "1,,5,,abc",
            "1,0.01,6,,1.5",
            "1,,7,,",
        ]
        let text = lines.joined(separator: "\n")
        try write(text, to: url)
        let table = try CSVReader.read(at: url)
        #expect(table.header == ["epoch", "lr, main", "step", "note \"x\"", "train_loss"])
        #expect(table.stepColumn == "step")
        #expect(table.rowCount == 11)
        #expect(table.warnings == [
            "\(url.path):3: column \"note \"x\"\": \"a, \"quoted\"\ntwo-line note\" is not a number (such cells are ignored)",
            "\(url.path):6: 4 fields where the header has 5, row skipped",
            "\(url.path):7: step (column \"step\") is \"zero\", not an integer; row skipped",
            "\(url.path):12: column \"train_loss\": \"abc\" is not a number (such cells are ignored)",
        ])
        let loss = try #require(table.scalars.first { $0.tag == "train_loss" })
        #expect(loss.steps == [0, 1, 2, 3, 4, 6])
        #expect(loss.values[0] == 2.5 && loss.values[1] == 2.25 && loss.values[2].isNaN)
        #expect(loss.values[3] == .infinity && loss.values[4] == -.infinity && loss.values[5] == 1.5)
        let lr = try #require(table.scalars.first { $0.tag == "lr, main" })
        #expect(lr.steps == [0, 2, 6] && lr.values == [0.1, 0.05, 0.01])
        #expect(!table.scalars.contains { $0.tag == "note \"x\"" })
    }

    @Test func plainCSVUsesTheFirstColumnAsStep() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("plain.csv")
        try write("iteration,loss,learning_rate,val_loss\n10,1.0,0.1,\n20,0.5,0.1,0.7\n30,0.25,0.05,\n", to: url)
        let run = try CSVReader.readRun(at: url)
        #expect(run.steps.step == [10, 20, 30] && run.steps.loss == [1, 0.5, 0.25] && run.steps.lrs == [[0.1, 0.1, 0.05]])
        #expect(run.evals.count == 1 && run.evals[0].step == 20 && run.evals[0].loss == 0.7 && run.evals[0].accuracy.isNaN)
    }
}
