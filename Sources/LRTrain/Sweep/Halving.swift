/// Synchronous successive halving (the rungs of ASHA, run one after another): every configuration trains to the
/// first rung's budget; the best 1/eta go on, from where they stopped, to a budget eta times larger; and so on up
/// to the full run. The work is about `rungs` full runs per eta^(rungs-1) configurations instead of one each.
public struct HalvingPlan: Sendable, Equatable {
    /// The step each rung ends at, increasing; the last is the full run.
    public let budgets: [Int]
    public let eta: Int

    /// - rungs: nil chooses as many as the configurations allow (until one would be left) while the first rung
    ///   keeps at least `minSteps` steps.
    public init(totalSteps: Int, configurations: Int, eta: Int = 3, rungs: Int? = nil, minSteps: Int = 20) throws(SweepError) {
        guard eta >= 2 else { throw SweepError("invalid --eta \(eta): must be at least 2 (3 keeps the best third at each rung)") }
        guard configurations >= 1 else { throw SweepError("the search space holds no configuration") }
        var count: Int
        if let rungs {
            guard rungs >= 1 else { throw SweepError("invalid --rungs \(rungs): must be at least 1") }
            // Each rung trains eta times longer than the one before: the first must keep at least one step.
            var fit = 1
            while Self.power(eta, fit) <= totalSteps { fit += 1 }
            guard rungs <= fit else {
                throw SweepError("invalid --rungs \(rungs): with --eta \(eta) each rung is \(eta) times longer than the one before, "
                    + "so the first of \(rungs) rungs of a \(totalSteps)-step run would train less than one step; at most \(fit) \(fit == 1 ? "fits" : "fit")")
            }
            count = rungs
        } else {
            count = 1
            var left = configurations
            while left >= eta && totalSteps / Self.power(eta, count) >= minSteps { left /= eta; count += 1 }
        }
        var budgets: [Int] = []
        for k in 0..<count {
            let b = k == count - 1 ? totalSteps : max(1, Int((Double(totalSteps) / Double(Self.power(eta, count - 1 - k))).rounded()))
            if b > (budgets.last ?? 0) { budgets.append(b) }
        }
        self.budgets = budgets
        self.eta = eta
    }

    public init(budgets: [Int], eta: Int) { self.budgets = budgets; self.eta = eta }

    public var rungs: Int { budgets.count }

    /// How many of `count` configurations go on after a rung: the best 1/eta, at least one.
    public func survivors(of count: Int) -> Int { max(1, count / eta) }

    /// The configurations that go on, best first: `scores` (lower is better) of those that ran the rung; a
    /// configuration without a finite score (diverged, failed) never goes on. Ties keep the configurations' order.
    public func promoted(_ scores: [(id: Int, score: Double?)]) -> [Int] {
        let ranked = scores.enumerated().sorted { a, b in
            let sa = a.element.score.flatMap { $0.isFinite ? $0 : nil }, sb = b.element.score.flatMap { $0.isFinite ? $0 : nil }
            switch (sa, sb) {
            case let (x?, y?): return x != y ? x < y : a.offset < b.offset
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.offset < b.offset
            }
        }.map(\.element)
        let finite = ranked.filter { $0.score.map(\.isFinite) ?? false }
        return Array(ranked.prefix(min(survivors(of: scores.count), max(finite.count, 0)))).map(\.id)
    }

    /// Optimizer steps the whole sweep trains for `configurations` configurations of `seeds` seeds each.
    public func totalSteps(configurations: Int, seeds: Int) -> Int {
        var alive = configurations, total = 0, previous = 0
        for b in budgets {
            total += alive * seeds * (b - previous)
            previous = b
            alive = survivors(of: alive)
        }
        return total
    }

    /// base^exp, or Int.max when that does not fit.
    static func power(_ base: Int, _ exp: Int) -> Int {
        var r = 1
        for _ in 0..<max(0, exp) {
            let (p, overflow) = r.multipliedReportingOverflow(by: base)
            if overflow { return .max }
            r = p
        }
        return r
    }
}
