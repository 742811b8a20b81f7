import Foundation

/// Samples/s over a sliding window of recent steps: steadier than one step's time, quicker than a run average.
struct StepClock {
    private var started: UInt64 = 0
    private var window: [(ns: UInt64, samples: Int)] = []
    private var head = 0

    mutating func begin() { started = DispatchTime.now().uptimeNanoseconds }

    mutating func end(samples: Int) -> Double {
        let ns = DispatchTime.now().uptimeNanoseconds &- started
        if window.count < 32 { window.append((ns, samples)) } else { window[head] = (ns, samples); head = (head + 1) % 32 }
        var t: UInt64 = 0, n = 0
        for w in window { t &+= w.ns; n += w.samples }
        return t == 0 ? 0 : Double(n) / (Double(t) / 1e9)
    }
}
