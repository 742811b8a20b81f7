import Testing
import LRLog
import LRTUI

@Suite struct PerformanceTests {
    /// A replay of a million steps: built from whole columns, then a full 160×48 frame.
    @Test func frameOfAMillionStepRun() {
        let n = 1_000_000
        var loss = [Double](repeating: 0, count: n)
        var lr = [Double](repeating: 0, count: n)
        for i in 0..<n {
            loss[i] = 2 / (1 + Double(i) / 1000) + (i % 7919 == 0 ? 3 : 0)
            lr[i] = 1e-3 * (1 + Double(n - i) / Double(n)) / 2
        }
        let run = RunModel(source: nil, status: LiveStatus(title: "1M", state: .finished, step: n, totalSteps: n))
        let clock = ContinuousClock()
        let build = clock.measure {
            run.ingestColumns(firstStep: 1, lrs: [lr], loss: loss, samplesPerSec: [Double](repeating: 5000, count: n),
                              gradNorm: [Double](repeating: 1, count: n))
        }
        let d = Dashboard(runs: [run])
        var buffer = Buffer(width: 160, height: 48)
        d.render(into: &buffer)  // warm up
        var frames: [Duration] = []
        for _ in 0..<5 {
            frames.append(clock.measure { d.render(into: &buffer) })
        }
        let best = frames.min()!
        print("1M steps: build \(build), frame \(best)")
        #expect(buffer.text.contains("1,000,000"))
        // The loss spikes every 7,919 steps survive in the envelope.
        #expect(run.loss.summary(in: 1...n)?.max ?? 0 > 4.9)
        // Generous bounds: debug builds on a shared 2-core machine; release renders in a few ms.
        #expect(best < .milliseconds(500))
        #expect(run.loss.storedBlockCount < 40_000)
    }
}
