import Foundation
import Testing
import LRLog
@testable import LRServe

@Suite struct RunProgressTests {
    func step(_ n: Int, loss: Double) -> RunRecord {
        .step(StepRecord(step: n, epoch: 0, lrs: [0.1], loss: loss, gradNorm: 1, samplesPerSec: 100, wallTime: Double(n)))
    }

    @Test func lossIsTheDashboardsSmoothingAndTheTrendSpansTheWholeRunInAtMost24Points() {
        let progress = RunProgress(samplesPerStep: 32)
        var ema = 0.0
        for n in 1...1000 {
            let loss = 2 - Double(n) / 1000
            progress.note(step(n, loss: loss), now: Double(n) * 0.1)
            ema = ema * 0.6 + 0.4 * loss
        }
        let f = progress.figures(now: 100.5)
        let debiased = ema / (1 - pow(0.6, 1000))
        #expect(abs((f.loss ?? 0) - debiased) < 1e-12)
        #expect(f.lossTrend.count <= RunProgress.trendPoints && f.lossTrend.count >= RunProgress.trendPoints / 2)
        #expect(f.lossTrend.first! > 1.9, "the trend starts near the run's start")
        #expect(f.lossTrend == f.lossTrend.sorted(by: >), "oldest first")
        #expect(abs((f.stepTime ?? 0) - 0.1) < 1e-9)
        #expect(abs((f.stepsPerSecond ?? 0) - 10) < 1e-6)
        #expect(abs((f.samplesPerSecond ?? 0) - 320) < 1e-4)
        #expect(abs((f.stepAge ?? 0) - 0.5) < 1e-9, "the age grows while no step comes")
    }

    @Test func beforeTwoStepsTimesAreUnknownAndValidationIsTheLastOne() {
        let progress = RunProgress(samplesPerStep: nil)
        #expect(progress.figures().stepTime == nil && progress.figures().loss == nil && progress.figures().stepAge == nil)
        progress.note(step(1, loss: .nan), now: 1)
        #expect(progress.figures(now: 2).stepTime == nil)
        #expect(progress.figures(now: 2).loss == nil, "a NaN loss is not a smoothed value")
        progress.note(.eval(EvalRecord(step: 1, epoch: 0, loss: 0.7, accuracy: 0.8, wallTime: 1)))
        progress.note(.eval(EvalRecord(step: 2, epoch: 0, loss: 0.5, accuracy: 0.9, wallTime: 2)))
        let f = progress.figures(now: 2)
        #expect(f.valLoss == 0.5 && f.valAcc == 0.9)
        #expect(f.samplesPerSecond == nil)
    }

    @Test func theEndReasonReadsInAFewWords() {
        func end(_ r: EndReason, _ m: String?) -> EndRecord {
            EndRecord(reason: r, step: 1, epoch: 0, finalLoss: nil, bestEvalLoss: nil, bestAccuracy: nil,
                      finalAccuracy: nil, wallTime: 1, message: m)
        }
        #expect(ServedRun.endWords(end(.completed, nil), phase: .finished) == "completed")
        #expect(ServedRun.endWords(end(.interrupted, "received SIGTERM"), phase: .stopped) == "SIGTERM")
        #expect(ServedRun.endWords(end(.failed, "disk full"), phase: .failed) == "error: disk full")
        #expect(ServedRun.endWords(nil, phase: .stopped) == "stopped")
        #expect(ServedRun.endWords(end(.stopped, nil), phase: .stopped) == "stopped by a viewer")
    }
}
