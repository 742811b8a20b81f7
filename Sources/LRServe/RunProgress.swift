import Foundation
import Synchronization
import LRLog
import LRTUI

/// The figures a status adds about the run's progress (docs/bridge.md, protocol E): smoothed loss and its trend,
/// the last validation, speed, ETA, the age of the last step and the median step time. Fed with every record on
/// the trainer thread (a few arithmetic operations and a short lock; fixed-size storage, nothing that grows with
/// the run), read by the socket's thread when it sends a status.
public final class RunProgress: Sendable {
    /// The dashboard's default smoothing (`RunModel.smoothingWeights[1]`), so `loss` is the curve a viewer sees.
    public static let smoothingWeight = 0.6
    /// Points of `loss_trend`.
    public static let trendPoints = 24
    /// Steps the median step time and the speed are taken over.
    public static let window = 64

    struct State {
        var ema = DebiasedEMA(weight: RunProgress.smoothingWeight)
        /// The smoothed loss sampled every `trendStride` step records: at most 2 × `trendPoints` values; when full,
        /// every other one is dropped and the stride doubles, so the points span the whole run.
        var trend: [Double] = []
        var trendStride = 1
        var steps = 0
        var valLoss: Double? = nil
        var valAcc: Double? = nil
        /// Monotonic seconds of the last `window` steps, a ring.
        var stepTimes = [Double](repeating: 0, count: RunProgress.window)
        var timed = 0
        var end: EndRecord? = nil
    }
    private let state: Mutex<State>
    /// Samples in one optimizer step (batch × accumulation), nil when unknown.
    public let samplesPerStep: Int?

    public init(samplesPerStep: Int?) {
        self.samplesPerStep = samplesPerStep
        var s = State()
        s.trend.reserveCapacity(2 * Self.trendPoints)
        state = Mutex(s)
    }

    /// What one status says about progress (nil: unknown).
    public struct Figures: Sendable, Equatable {
        public var loss: Double?
        public var lossTrend: [Double]
        public var valLoss, valAcc: Double?
        public var stepsPerSecond, samplesPerSecond: Double?
        public var stepAge, stepTime: Double?
        public var end: EndRecord?
    }

    /// Takes one record (the trainer thread, after it was logged).
    public func note(_ record: RunRecord, now: Double = RunProgress.monotonic()) {
        switch record {
        case .step(let r):
            state.withLock { s in
                s.steps += 1
                let smoothed = s.ema.add(r.loss)
                s.stepTimes[s.timed % Self.window] = now
                s.timed += 1
                guard smoothed.isFinite, (s.steps - 1) % s.trendStride == 0 else { return }
                if s.trend.count == 2 * Self.trendPoints {
                    var kept = 0
                    for i in stride(from: 1, to: s.trend.count, by: 2) { s.trend[kept] = s.trend[i]; kept += 1 }
                    s.trend.removeLast(s.trend.count - kept)
                    s.trendStride *= 2
                }
                s.trend.append(smoothed)
            }
        case .eval(let e):
            state.withLock { s in
                s.valLoss = e.loss.isFinite ? e.loss : nil
                s.valAcc = e.accuracy.isFinite ? e.accuracy : nil
            }
        case .end(let e):
            state.withLock { $0.end = e }
        default:
            break
        }
    }

    /// The figures now (`step_age` grows while the loop is stuck or paused).
    public func figures(now: Double = RunProgress.monotonic()) -> Figures {
        state.withLock { s in
            let n = min(s.timed, Self.window)
            var stepTime: Double? = nil, rate: Double? = nil, age: Double? = nil
            if n >= 1 { age = max(0, now - s.stepTimes[(s.timed - 1) % Self.window]) }
            if n >= 2 {
                let times = (s.timed - n ..< s.timed).map { s.stepTimes[$0 % Self.window] }
                var gaps = zip(times.dropFirst(), times).map { $0 - $1 }
                gaps.sort()
                stepTime = gaps.count % 2 == 1 ? gaps[gaps.count / 2] : (gaps[gaps.count / 2 - 1] + gaps[gaps.count / 2]) / 2
                let span = times[times.count - 1] - times[0]
                if span > 0 { rate = Double(n - 1) / span }
            }
            // At most `trendPoints`, oldest first, evenly spread over what is kept.
            let every = max(1, (s.trend.count + Self.trendPoints - 1) / Self.trendPoints)
            var trend: [Double] = []
            var i = s.trend.count - 1
            while i >= 0 { trend.append(s.trend[i]); i -= every }
            let loss = s.ema.value
            return Figures(loss: loss.isFinite ? loss : nil, lossTrend: trend.reversed(), valLoss: s.valLoss,
                           valAcc: s.valAcc, stepsPerSecond: rate,
                           samplesPerSecond: samplesPerStep.flatMap { n in rate.map { $0 * Double(n) } }, stepAge: age, stepTime: stepTime,
                           end: s.end)
        }
    }

    public static func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
