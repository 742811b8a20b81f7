import LROptim
import LRTensor

enum SchedGolden {
    /// The golden `spec` object as lrtop spec text: `CosineAnnealingLR:T_max=90,eta_min=0`; `SequentialLR`
    /// becomes `A -> @m B`. Mapping goes by the names in the file, so new files of the same format need no code.
    static func specText(_ spec: JSONValue) throws -> String {
        guard let cls = spec["scheduler"]?.string, let obj = spec.object else {
            throw GoldenFailure(description: "spec has no 'scheduler' class name")
        }
        if cls == "SequentialLR" {
            guard let children = spec["schedulers"]?.array, let ms = spec["milestones"]?.array?.compactMap(\.int),
                  ms.count == children.count - 1 else {
                throw GoldenFailure(description: "SequentialLR needs schedulers and one milestone fewer")
            }
            var text = try specText(children[0])
            for (i, m) in ms.enumerated() { text += " -> @\(m) " + (try specText(children[i + 1])) }
            return text
        }
        let options = obj.filter { $0.key != "scheduler" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.specText)" }
        return options.isEmpty ? cls : cls + ":" + options.joined(separator: ",")
    }

    struct Run { var lrs: [Double]; var scheduler: SchedulerBase; var plan: [[Double]]? }

    static func run(_ file: JSONValue) throws -> Run {
        guard let base = file["base_lr"]?.double, let steps = file["steps"]?.int, let spec = file["spec"] else {
            throw GoldenFailure(description: "malformed scheduler file (needs base_lr, steps, spec)")
        }
        let param = Parameter(name: "w", value: Tensor(shape: [1]))
        let opt = try OptimizerFactory.make(spec: "sgd:lr=\(base)", parameters: [param])
        let sched = try SchedulerFactory.make(spec: specText(spec), optimizer: opt,
                                              context: ScheduleContext(totalSteps: steps, stepsPerEpoch: 1))
        let plan = sched.plan(count: steps)
        let metrics = file["metrics"]?.doubles
        var lrs = [opt.groups[0].lr]
        for k in 0..<steps {
            sched.step(metric: metrics.map { $0[k] })
            lrs.append(opt.groups[0].lr)
        }
        return Run(lrs: lrs, scheduler: sched, plan: plan)
    }

    /// The first mismatch with `expected_lr` (or with the plan made before stepping), described; nil if none.
    static func check(_ file: JSONValue, name: String) throws -> String? {
        let run = try run(file)
        guard let want = file["expected_lr"]?.doubles else { return "\(name): no expected_lr" }
        let rtol = file["rtol"]?.double ?? 0, atol = file["atol"]?.double ?? 0
        if want.count != run.lrs.count { return "\(name): \(run.lrs.count) LRs, \(want.count) expected" }
        for k in 0..<want.count where !(abs(run.lrs[k] - want[k]) <= atol + rtol * abs(want[k])) {
            return "\(name) (\(run.scheduler.spec)): step \(k), index 0: got \(run.lrs[k]), want \(want[k])"
        }
        if let plan = run.plan {
            for k in 0..<plan.count where plan[k][0] != run.lrs[k + 1] {
                return "\(name): plan[\(k)] = \(plan[k][0]) but stepping gave \(run.lrs[k + 1])"
            }
        }
        return nil
    }
}
