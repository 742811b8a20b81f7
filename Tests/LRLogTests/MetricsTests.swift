import Foundation
import LRLog
import Testing

/// Lines as the Python bridge writes them (`run.step(loss, acc=..., **metrics)`: extra keys after the built-in ones),
/// with the awkward cases: NaN strings, null, a non-number, a `metrics` object holding a built-in name, a step's
/// `accuracy`, an eval's `grad_norm`, a metrics record (`run.log`) at steps with and without a step record.
private let bridgeLog = """
{"type":"header","schema":1,"lrtop_version":"py","start_time":"2025-01-01T00:00:00Z","seed":1,"groups":["all"],"steps_per_epoch":10,"config":{}}
{"type":"step","step":1,"epoch":0,"lrs":[0.001],"loss":2.5,"grad_norm":1.0,"samples_per_sec":100.0,"wall_time":0.1,"acc":0.25,"train/ppl":12.5,"loss_scale":65536.0}
{"type":"step","step":2,"epoch":0,"lrs":[0.001],"loss":2.0,"grad_norm":1.0,"samples_per_sec":100.0,"wall_time":0.2,"acc":"NaN","note":"text","flag":true,"list":[1,2],"train/ppl":null,"metrics":{"loss":9.5,"x":"y"},"accuracy":0.75}
{"type":"step","step":3,"epoch":0,"lrs":[0.001],"loss":1.5,"grad_norm":1.0,"samples_per_sec":100.0,"wall_time":0.3,"acc":0.5}
{"type":"eval","step":3,"epoch":0,"loss":1.25,"accuracy":0.6,"wall_time":0.35,"val/f1":0.55,"grad_norm":7.0}
{"type":"metrics","step":3,"wall_time":0.36,"tokens":3000.0,"loss":1.4,"epoch":0}
{"type":"metrics","step":5,"wall_time":0.5,"tokens":5000.0}
"""

private func write(_ text: String, named name: String = "run.jsonl") throws -> URL {
    let dir = try temporaryDirectory()
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
}

/// A float column's values as Doubles (NaN for not logged).
private func column(_ run: RunData, _ name: String) -> [Double]? { run.steps.metric(named: name)?.map(Double.init) }

private func sameValues(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
}

@Suite struct MetricsTests {
    @Test func everyNumericKeyOfARecordIsAMetric() throws {
        let url = try write(bridgeLog)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try RunLogReader.readRun(at: url)
        #expect(run.warnings.isEmpty)
        // Step records: columns in order of first appearance, NaN where a record lacked (or nulled) one.
        #expect(run.steps.metricNames == ["acc", "train/ppl", "loss_scale", "loss", "accuracy"])
        #expect(sameValues(column(run, "acc")!, [0.25, .nan, 0.5]))
        #expect(sameValues(column(run, "train/ppl")!, [12.5, .nan, .nan]))
        #expect(sameValues(column(run, "loss")!, [.nan, 9.5, .nan]))  // the metrics object's "loss", not the loss
        #expect(sameValues(column(run, "accuracy")!, [.nan, 0.75, .nan]))  // a step's accuracy is no built-in
        #expect(run.steps.loss == [2.5, 2.0, 1.5])
        // An eval's own keys, a metrics record's (anything but step and wall_time).
        // Metrics are kept at float32 precision.
        #expect(run.evals[0].metrics == [MetricValue("val/f1", Double(Float(0.55))), MetricValue("grad_norm", 7.0)])
        #expect(run.metricSeries.map(\.name) == ["tokens", "loss", "epoch"])
        #expect(run.metricSeries[0].steps == [3, 5] && run.metricSeries[0].values == [3000, 5000])
        #expect(run.metricSeries[0].wallTimes == [0.36, 0.5])
        #expect(run.metricNames == ["acc", "train/ppl", "loss_scale", "loss", "accuracy", "val/f1", "grad_norm", "tokens", "epoch"])
        // Every series by the name the grid and --metric use: the built-ins as export names them.
        let names = run.namedMetrics.map(\.name)
        #expect(Array(names.prefix(6)) == ["train/loss", "train/lr", "train/grad_norm", "train/samples_per_sec", "val/loss", "val/acc"])
        #expect(Array(names.dropFirst(6)) == run.metricNames)
        let loss = try #require(run.metricSource(named: "loss"))
        let samples = run.samples(loss)
        #expect(samples.steps == [2, 3] && samples.values == [9.5, Double(Float(1.4))])  // step 2's column, step 3's metrics record
    }

    @Test func wholeRecordsCarryTheirMetricsAndEveryReaderAgrees() throws {
        let url = try write(bridgeLog)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let records = try RunLogReader.readRecords(at: url).records
        guard case let .step(s2) = records[2], case let .eval(e) = records[4], case let .metrics(m) = records[5] else {
            Issue.record("unexpected records \(records)"); return
        }
        #expect(s2.metrics.map(\.name) == ["acc", "train/ppl", "loss", "accuracy"])
        #expect(s2.metrics[metric: "acc"]!.isNaN && s2.metrics[metric: "loss"] == 9.5)
        #expect(e.metrics == [MetricValue("val/f1", Double(Float(0.55))), MetricValue("grad_norm", 7.0)])
        #expect(m == MetricsRecord(step: 3, wallTime: 0.36, metrics: [MetricValue("tokens", 3000), MetricValue("loss", Double(Float(1.4))),
                                                                      MetricValue("epoch", 0)]))
        // A key with an escape takes the general JSON parser: the same metrics come out.
        let lines = bridgeLog.split(separator: "\n").map(String.init)
        let escaped = lines[2].replacingOccurrences(of: "\"train/ppl\"", with: #""train\/ppl""#)
        guard case let .step(general) = try RunLogLine.decode(escaped) else { Issue.record("not a step"); return }
        #expect(general.metrics.map(\.name) == ["acc", "train/ppl", "loss", "accuracy"])
        #expect(RunLogLine.encode(.step(general)) == RunLogLine.encode(.step(s2)))
        // What Foundation's coders make of a line, and of a record.
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let viaFoundation = try decoder.decode(RunRecord.self, from: Data(lines[1].utf8))
        guard case let .step(f) = viaFoundation else { Issue.record("not a step"); return }
        #expect(Set(f.metrics.map(\.name)) == ["acc", "train/ppl", "loss_scale"] && f.metrics[metric: "loss_scale"] == 65536)
    }

    @Test func theWriterPutsMetricsAfterTheBuiltInKeysAndTakenNamesInAMetricsObject() throws {
        let step = StepRecord(step: 4, epoch: 0, lrs: [0.1], loss: 1, gradNorm: 2, samplesPerSec: 3, wallTime: 4,
                              metrics: [MetricValue("train/acc", 0.5), MetricValue("loss", 7), MetricValue("x", .nan)])
        let line = RunLogLine.encode(.step(step))
        #expect(line == #"{"type":"step","step":4,"epoch":0,"lrs":[0.1],"loss":1.0,"grad_norm":2.0,"samples_per_sec":3.0,"wall_time":4.0,"train/acc":0.5,"x":"NaN","metrics":{"loss":7.0}}"#)
        guard case let .step(back) = try RunLogLine.decode(line) else { Issue.record("not a step"); return }
        #expect(back.metrics.map(\.name) == ["train/acc", "x", "loss"] && back.metrics[metric: "loss"] == 7)
        let metrics = MetricsRecord(step: 9, wallTime: 1.5, metrics: [MetricValue("tokens", 1e9), MetricValue("step", 3)])
        let mline = RunLogLine.encode(.metrics(metrics))
        #expect(mline == #"{"type":"metrics","step":9,"wall_time":1.5,"tokens":1000000000.0,"metrics":{"step":3.0}}"#)
        #expect(try RunLogLine.decode(mline) == .metrics(metrics))
        // Foundation writes the same keys (in its own order) and reads them back.
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let json = try encoder.encode(RunRecord.metrics(metrics))
        #expect(try decoder.decode(RunRecord.self, from: json) == .metrics(metrics))
        // Foundation's key order is its own: the metrics come back, in some order.
        guard case let .metrics(read) = try RunLogLine.decode(String(decoding: json, as: UTF8.self)) else {
            Issue.record("not a metrics record"); return
        }
        #expect(read.step == 9 && read.wallTime == 1.5)
        #expect(read.metrics.sorted { $0.name < $1.name } == metrics.metrics.sorted { $0.name < $1.name })
    }

    @Test func namesTooLongOrTooManyAreLeftOutWithOneWarningEach() throws {
        let long = String(repeating: "n", count: RunLogLine.maxMetricNameBytes + 1)
        var text = #"{"type":"header","schema":1,"groups":["all"],"config":{}}"# + "\n"
        text += #"{"type":"step","step":1,"lrs":[0.1],"loss":1,"wall_time":1,"\#(long)":1,"ok":2}"# + "\n"
        text += #"{"type":"step","step":2,"lrs":[0.1],"loss":1,"wall_time":1,"\#(long)":1,"ok":3}"# + "\n"
        // More names than a log may use: "ok" and the first 1,023 of these fit.
        let many = (0..<(RunLogLine.maxMetricNames + 10)).map { "\"m\($0)\":\($0)" }.joined(separator: ",")
        text += #"{"type":"step","step":3,"lrs":[0.1],"loss":1,"wall_time":1,"#  + many + "}\n"
        let more = (0..<20).map { "\"z\($0)\":1" }.joined(separator: ",")
        text += #"{"type":"step","step":4,"lrs":[0.1],"loss":1,"wall_time":1,"#  + more + ",\"ok\":4}\n"
        let url = try write(text)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try RunLogReader.readRun(at: url)
        #expect(run.steps.count == 4)  // no record is lost for its metrics
        #expect(sameValues(column(run, "ok")!, [2, 3, .nan, 4]))
        #expect(run.steps.metricNames.count == RunLogLine.maxMetricNames)
        #expect(!run.steps.metricNames.contains(long) && run.steps.metricNames.contains("m1022"))
        #expect(!run.steps.metricNames.contains("m1023") && !run.steps.metricNames.contains("z0"))
        #expect(run.warnings.count == 2, "\(run.warnings)")
        #expect(run.warnings[0].hasSuffix(":2: metric name of 257 bytes (\"\(String(repeating: "n", count: 40))…\") is longer than 256; such metrics are left out"))
        #expect(run.warnings[1].hasSuffix(":4: metric \"m1023\" is beyond the first 1024 metric names; later names are left out"))
    }

    @Test func metricValuesReadAsTheFloatOfTheirText() throws {
        // Float32 values written as doubles (what a bridge writes for tensor metrics: "0.8745999336242676"), and
        // any decimals: each reads as the Float nearest to its text's Double, whichever path reads it.
        var rng = SystemRandomNumberGenerator()
        var texts: [String] = ["3.4028235e38", "3.5e38", "1e-45", "1.4e-45", "-0", "16777217", "0.1", "123456789012345678901234567890"]
        for _ in 0..<10_000 { texts.append(Double(Float(bitPattern: UInt32.random(in: 0..<0x7F80_0000, using: &rng))).description) }
        for _ in 0..<10_000 {
            let digits = Int.random(in: 1...19, using: &rng)
            var mantissa = String(Int.random(in: 1...9, using: &rng))
            for _ in 1..<digits { mantissa += String(Int.random(in: 0...9, using: &rng)) }
            texts.append(mantissa + "e\(Int.random(in: -50...40, using: &rng))")
        }
        for text in texts {
            let want = Double(Float(Double(text)!))
            let step = #"{"type":"step","step":1,"lrs":[],"loss":0,"wall_time":0,"m":\#(text)}"#
            let escaped = #"{"type":"step","step":1,"lrs":[],"loss":0,"wall_time":0,"\u006d":\#(text)}"#  // the general parser
            for line in [step, escaped] {
                guard case let .step(s) = try RunLogLine.decode(line), let got = s.metrics[metric: "m"] else {
                    Issue.record("\(line)"); continue
                }
                #expect(got.bitPattern == want.bitPattern, "\(text): \(got) vs \(want)")
            }
        }
    }

    @Test(arguments: [2, 3, 7])
    func aLogReadInPiecesIsTheLogReadInOnePass(pieces: Int) throws {
        // Metrics appearing in later pieces only, a garbage line and a cut-off last line (warnings numbered over the
        // whole file), evals, events, metrics records and the end record in different pieces.
        var text = bridgeLog + "\n"
        for s in 10...400 {
            text += #"{"type":"step","step":\#(s),"epoch":1,"lrs":[0.001,0.002],"loss":\#(1 / Double(s)),"wall_time":\#(s),"acc":\#(Double(s) / 400)"#
            if s > 300 { text += #","late":\#(s)"# }
            text += "}\n"
            if s == 200 { text += "not json at all\n" }
            if s % 100 == 0 { text += #"{"type":"eval","step":\#(s),"loss":0.5,"accuracy":0.75,"wall_time":\#(s),"val/f1":0.5}"# + "\n" }
            if s % 150 == 0 { text += #"{"type":"metrics","step":\#(s),"wall_time":\#(s),"tokens":\#(s * 10)}"# + "\n" }
            if s == 250 { text += #"{"type":"event","step":250,"kind":"command","text":"lr 1e-4","lrs_before":[0.001],"lrs_after":[0.0001],"wall_time":250}"# + "\n" }
        }
        text += #"{"type":"end","reason":"completed","step":400,"epoch":1,"wall_time":401}"# + "\n"
        text += #"{"type":"step","step":401,"lrs":[0.1"#
        let url = try write(text)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let one = try RunLogReader.readRun(at: url, pieces: 1)
        let many = try RunLogReader.readRun(at: url, pieces: pieces)
        #expect(many.steps.count == one.steps.count && one.steps.count == 3 + 391)
        #expect(many.steps.step == one.steps.step && many.steps.loss == one.steps.loss && many.steps.wallTime == one.steps.wallTime)
        #expect(many.steps.lrs.count == 2 && many.steps.lrs[1].count == one.steps.count)
        #expect(zip(many.steps.lrs.joined(), one.steps.lrs.joined()).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        #expect(Set(many.steps.metricNames) == Set(one.steps.metricNames))
        for name in one.steps.metricNames {
            #expect(sameValues(column(many, name)!, column(one, name)!), "\(name)")
        }
        #expect(many.evals == one.evals && many.events == one.events && many.end == one.end && many.header == one.header)
        #expect(many.metricSeries == one.metricSeries && many.groups == one.groups)
        #expect(many.warnings == one.warnings && one.warnings.count == 2, "\(many.warnings) vs \(one.warnings)")
        let garbage = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex(of: "not json at all")! + 1
        #expect(one.warnings[0].contains(":\(garbage): not JSON"), "\(one.warnings[0])")
        #expect(one.warnings.last!.contains("truncated last line"))
    }

    @Test func summaryOfAMetric() throws {
        let url = try write(bridgeLog)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try RunLogReader.readRun(at: url)
        let acc = try #require(MetricSummary(run, metric: "acc"))
        #expect(acc.count == 2 && acc.firstStep == 1 && acc.lastStep == 3 && acc.last == 0.5)
        #expect(acc.min?.value == 0.25 && acc.min?.step == 1 && acc.max?.value == 0.5 && acc.mean == 0.375 && acc.nonFinite == 0)
        let loss = try #require(MetricSummary(run, metric: "train/loss"))
        #expect(loss.count == 3 && loss.last == 1.5 && loss.min?.step == 3)
        #expect(MetricSummary(run, metric: "nope") == nil)
    }

    /// A run with metrics of every kind: dense and sparse step metrics, eval metrics, metrics records, a metric named
    /// like a built-in column, values that need more digits than Float32 keeps.
    private func metricRun(in dir: URL) throws -> RunData {
        let url = dir.appendingPathComponent("run.jsonl")
        let writer = try RunLogWriter(url: url)
        try writer.write(header: RunHeader(lrtopVersion: "t", config: [:], seed: 1, startTime: "2025-01-02T03:04:05Z",
                                           groups: ["all"], stepsPerEpoch: 20, totalSteps: 100))
        for i in 1...100 {
            var metrics = [MetricValue("train/acc", Double(i) / 100), MetricValue("gpu_mem_peak", 3.1e10 + Double(i) * 1e6)]
            if i % 10 == 0 { metrics.append(MetricValue("grad/attn", 1 / Double(i))) }
            if i == 50 { metrics.append(MetricValue("loss", 0.123)) }
            try writer.write(step: StepRecord(step: i, epoch: (i - 1) / 20, lrs: [1e-3], loss: 1 / Double(i), gradNorm: 1,
                                              samplesPerSec: 1000, wallTime: Double(i) * 0.01, metrics: metrics))
            if i % 25 == 0 {
                try writer.write(eval: EvalRecord(step: i, epoch: (i - 1) / 20, loss: 0.5, accuracy: 0.8, wallTime: Double(i) * 0.01,
                                                  metrics: [MetricValue("val/f1", Double(i) / 200)]))
            }
            if i % 30 == 0 {
                try writer.write(.metrics(MetricsRecord(step: i, wallTime: Double(i) * 0.01 + 0.001,
                                                        metrics: [MetricValue("tokens", Double(i) * 4096)])))
            }
        }
        try writer.write(.metrics(MetricsRecord(step: 120, wallTime: 2, metrics: [MetricValue("tokens", 120 * 4096)])))
        try writer.close()
        return try RunLogReader.readRun(at: url)
    }

    /// Each of `names` of `a` is in `b` under the same name (or the `_metric` one `renamed` says), with the same
    /// steps and the same values at Float32 precision.
    private func expectSameMetrics(_ a: RunData, _ b: RunData, names: [(name: String, source: MetricSource)],
                                   renamed: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) {
        let namesB = Set(b.namedMetrics.map(\.name))
        for (name, source) in names {
            let nameB = renamed[name] ?? name
            guard namesB.contains(nameB), let sourceB = b.metricSource(named: nameB) else {
                Issue.record("no '\(nameB)' in \(b.namedMetrics.map(\.name))", sourceLocation: sourceLocation); continue
            }
            let x = a.samples(source), y = b.samples(sourceB)
            #expect(x.steps == y.steps, "\(name): steps", sourceLocation: sourceLocation)
            #expect(x.values.count == y.values.count && zip(x.values, y.values).allSatisfy { sameFloat32($0, $1) },
                    "\(name): values", sourceLocation: sourceLocation)
        }
    }

    @Test func exportToTensorBoardAndBackKeepsEveryMetric() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try metricRun(in: dir)
        #expect(original.metricNames == ["train/acc", "gpu_mem_peak", "grad/attn", "loss", "val/f1", "tokens"])
        let file = try TensorBoardExport.write(original, to: dir.appendingPathComponent("tb"))
        let content = try TensorBoardReader.read(at: file)
        #expect(Set(content.scalars.map(\.tag)) == ["train/loss", "train/lr", "train/grad_norm", "train/samples_per_sec",
                                                    "val/loss", "val/acc", "train/acc", "gpu_mem_peak", "grad/attn", "loss",
                                                    "val/f1", "tokens"])
        let back = try #require(try RunLoader.load(dir.appendingPathComponent("tb")).runs.first)
        // lrtop's own tags are the built-ins even beside a metric named `loss`.
        #expect(back.mapping.loss == "train/loss" && back.mapping.evalAccuracy == "val/acc")
        expectSameMetrics(original, back, names: original.namedMetrics)
        #expect(back.metricSeries.first { $0.name == "tokens" }?.steps == [30, 60, 90, 120])
    }

    @Test func exportToCSVAndBackKeepsEveryMetric() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = try metricRun(in: dir)
        let url = dir.appendingPathComponent("run.csv")
        try CSVExport.write(original, to: url)
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines[0] == "step,epoch,lr,loss,grad_norm,samples_per_sec,wall_time,val_loss,val_acc,train/acc,gpu_mem_peak,grad/attn,loss_metric,val/f1,tokens")
        #expect(lines.last == "120,0,,,,,,,,,,,,,491520.0")  // a metrics record after the last step: a row of its own
        let back = try CSVReader.readRun(at: url)
        #expect(back.warnings.isEmpty, "\(back.warnings)")
        // The built-ins come back under CSV's names (`lr`, `loss`, `val_acc` ...; ExportTests holds them): the metrics.
        expectSameMetrics(original, back, names: original.metricNames.map { ($0, .own($0)) }, renamed: ["loss": "loss_metric"])
        #expect(back.steps.step == Array(1...100) + [120])
    }

    @Test func aTensorBoardFileWithADozenTagsKeepsEveryTag() throws {
        let (file, entry) = try metricFixture(prefix: "tensorboard_dozen/")
        let run = try #require(try RunLoader.load(file).runs.first)
        let tags = try #require(entry["tags"] as? [String: Int])
        #expect(tags.count == 12)
        #expect(Set(run.namedMetrics.map(\.name)) == Set(tags.keys))
        #expect(run.namedMetrics.map(\.name) == run.tags)  // the file's order
        for (tag, count) in tags {
            let source = try #require(run.metricSource(named: tag))
            let s = run.samples(source)
            #expect(s.values.count == count, "\(tag)")
            let first = try #require(entry["first"] as? [String: [Double]])[tag]!
            let last = try #require(entry["last"] as? [String: [Double]])[tag]!
            #expect(s.steps.first == Int(first[0]) && sameFloat32(s.values.first!, first[1]), "\(tag) first")
            #expect(s.steps.last == Int(last[0]) && sameFloat32(s.values.last!, last[1]), "\(tag) last")
        }
        #expect(run.mapping.loss == "train/loss" && run.mapping.lrs == ["train/lr"] && run.mapping.evalAccuracy == "val/acc")
    }

    @Test func aLightningCSVKeepsEveryColumn() throws {
        let (file, entry) = try metricFixture(prefix: "lightning_many/")
        let run = try CSVReader.readRun(at: file)
        #expect(run.warnings.isEmpty)
        let columns = try #require(entry["columns"] as? [String: Int])
        #expect(Set(run.namedMetrics.map(\.name)) == Set(columns.keys))
        for (column, count) in columns {
            let s = run.samples(try #require(run.metricSource(named: column)))
            #expect(s.values.count == count, "\(column)")
            let last = try #require(entry["last"] as? [String: [Double]])[column]!
            #expect(s.steps.last == Int(last[0]) && sameFloat32(s.values.last!, last[1]), "\(column) last")
        }
    }
}

/// The metric fixtures (scripts/record_metric_fixtures.py): the file whose manifest key starts with `prefix`.
func metricFixture(prefix: String) throws -> (URL, [String: Any]) {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/metrics")
    let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
    let entries = try #require(manifest as? [String: [String: Any]])
    let (name, entry) = try #require(entries.first { $0.key.hasPrefix(prefix) })
    return (dir.appendingPathComponent(name), entry)
}
