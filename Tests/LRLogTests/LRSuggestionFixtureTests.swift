import Foundation
import Testing
import LRLog
import LRCommand

/// The LR range test against fastai and Lightning themselves: spec/lr_find_curves.json holds curves and what
/// fastai's `Learner.lr_find` suggestion functions and Lightning's `suggestion()` returned for them, recorded by
/// scripts/record_lr_find_fixtures.py.
@Suite struct LRSuggestionFixtureTests {
    struct Curve {
        var name: String
        var settings: LRRangeSettings
        var stop: String
        var lrs: [Double]
        var raw: [Double]
        var losses: [Double]
        var fastai: [String: Double?]
        var lightning: Double?
    }

    static func curves() throws -> [Curve] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("spec/lr_find_curves.json"))
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try #require(doc["curves"] as? [[String: Any]])
        func numbers(_ v: Any?) -> [Double] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
        func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
        return list.map { c in
            let fa = c["fastai"] as? [String: Any] ?? [:]
            return Curve(name: c["name"] as! String,
                         settings: LRRangeSettings(start: number(c["start"])!, end: number(c["end"])!,
                                                   steps: (c["num_it"] as! NSNumber).intValue),
                         stop: c["stop"] as! String, lrs: numbers(c["lrs"]), raw: numbers(c["raw_losses"]),
                         losses: numbers(c["losses"]),
                         fastai: Dictionary(uniqueKeysWithValues: ["valley", "steep", "minimum", "slide"].map { ($0, number(fa[$0])) }),
                         lightning: number(c["lightning"]))
        }
    }

    static func close(_ a: Double?, _ b: Double?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case let (x?, y?): return abs(x - y) <= 1e-9 * max(abs(x), abs(y))
        default: return false
        }
    }

    @Test func everyCurveGetsTheSuggestionsFastaiAndLightningGave() throws {
        let curves = try Self.curves()
        #expect(curves.count >= 10)
        #expect(curves.contains { $0.stop == "diverged" } && curves.contains { $0.stop == "non_finite" })
        #expect(curves.contains { $0.fastai["valley"]! == nil })
        for c in curves {
            let s = LRSuggestions(lrs: c.lrs, losses: c.losses, numIt: c.settings.steps)
            #expect(Self.close(s.valley, c.fastai["valley"]!), "\(c.name): valley \(String(describing: s.valley))")
            #expect(Self.close(s.steep, c.fastai["steep"]!), "\(c.name): steep \(String(describing: s.steep))")
            #expect(Self.close(s.minimum, c.fastai["minimum"]!), "\(c.name): minimum \(String(describing: s.minimum))")
            #expect(Self.close(s.slide, c.fastai["slide"]!), "\(c.name): slide \(String(describing: s.slide))")
            #expect(Self.close(s.lightning, c.lightning), "\(c.name): lightning \(String(describing: s.lightning))")
        }
    }

    /// The sweep's own rules (fastai's SchedExp LRs, AvgSmoothLoss, stop_div) rebuild each recorded curve from its
    /// raw losses: same LRs, same smoothed losses (float32 in the fixture), same stopping point.
    @Test func theSweepRulesRebuildEveryCurveFromItsRawLosses() throws {
        for c in try Self.curves() {
            var curve = LRRangeCurve(settings: c.settings)
            for (i, loss) in c.raw.enumerated() {
                let lr = try #require(curve.nextLR, "\(c.name): stopped before point \(i)")
                #expect(abs(lr - c.lrs[i]) <= 1e-15 * c.lrs[i], "\(c.name): lr \(i)")
                curve.append(lr: lr, loss: loss)
            }
            #expect(curve.nextLR == nil, "\(c.name): should have stopped after \(c.raw.count) points")
            let expected: LRRangeCurve.Stop = c.stop == "diverged" ? .diverged : c.stop == "completed" ? .completed : .nonFinite
            #expect(curve.stop == expected, "\(c.name)")
            // fastai averages in float32 (torch.lerp), this in Double: they drift apart by float32 rounding only.
            for (mine, theirs) in zip(curve.losses, c.losses) where theirs.isFinite {
                #expect(abs(mine - theirs) <= 2e-5 * abs(theirs), "\(c.name): \(mine) vs \(theirs)")
            }
            // The curve's own suggestions (from its Double losses) agree with the recorded float32 ones.
            let s = curve.suggestions
            #expect(Self.close(s.valley, c.fastai["valley"]!), "\(c.name): valley from the rebuilt curve")
            #expect(Self.close(s.lightning, c.lightning), "\(c.name): lightning from the rebuilt curve")
        }
    }

    @Test func aSubRunLogRebuildsTheCurve() throws {
        let c = try #require(try Self.curves().first)
        var records: [RunRecord] = [.header(RunHeader(lrtopVersion: "t", config: c.settings.configEntries, seed: 1,
                                                      startTime: "", groups: ["all"], stepsPerEpoch: 10,
                                                      totalSteps: c.settings.steps,
                                                      subrun: SubRun(kind: .findLR, label: "find-lr", fromStep: 0)))]
        for (i, (lr, loss)) in zip(c.lrs, c.raw).enumerated() {
            records.append(.step(StepRecord(step: i + 1, epoch: 0, lrs: [lr], loss: loss, gradNorm: 1, samplesPerSec: 1,
                                            wallTime: 0)))
        }
        let curve = try #require(LRRangeCurve(records: records))
        #expect(curve.count == c.lrs.count)
        #expect(Self.close(curve.suggestions.valley, c.fastai["valley"]!))
        #expect(curve.summary.contains("valley"))
    }
}
