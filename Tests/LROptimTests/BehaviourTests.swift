import Foundation
import Testing
import LROptim
import LRTensor

/// Deterministic pseudo-random gradients (no global state).
struct Grads {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 500
    }
    mutating func fill(_ params: [Parameter]) {
        for p in params { p.grad.storage = (0..<p.grad.count).map { _ in next() } }
    }
}

@Suite struct OptimizerStateTests {
    /// Snapshot, continue N steps, restore (into the same and into a fresh optimizer, through JSON), continue
    /// again: bit-identical, for every optimizer.
    @Test(arguments: OptimizerFactory.names)
    func snapshotRestoreContinuesBitExactly(_ name: String) throws {
        let extra = name == "sgd" ? ":lr=0.1,momentum=0.9,nesterov=true" : (name == "rmsprop" ? ":momentum=0.5,centered=true" : "")
        let rules = ["head.*:lr_scale=2", "no_decay_bias_norm"]
        let params = sampleParameters()
        let opt = try OptimizerFactory.make(spec: name + extra, rules: rules, parameters: params)
        var rng = Grads(state: 42)
        for _ in 0..<5 { rng.fill(params); opt.step() }
        let snap = opt.stateSnapshot()
        let values = params.map { $0.value.storage }
        let rngAt = rng
        func continueSteps(_ o: OptimizerBase, _ ps: [Parameter]) -> [[Float]] {
            var r = rngAt
            for k in 0..<5 { r.fill(ps); for g in o.groups { g.lr *= k == 2 ? 0.5 : 1 }; o.step() }
            return ps.map { $0.value.storage }
        }
        let first = continueSteps(opt, params)

        // The same optimizer, rewound.
        for (p, v) in zip(params, values) { p.value.storage = v }
        try opt.restore(snap)
        #expect(continueSteps(opt, params) == first)

        // A fresh optimizer from the same strings, restored from JSON.
        let decoded = try JSONDecoder().decode(OptimizerState.self, from: JSONEncoder().encode(snap))
        #expect(decoded == snap)
        let fresh = sampleParameters()
        for (p, v) in zip(fresh, values) { p.value.storage = v }
        let opt2 = try OptimizerFactory.make(spec: name + extra, rules: rules, parameters: fresh)
        try opt2.restore(decoded)
        #expect(opt2.groups.map(\.lr) == snap.groupLRs)
        #expect(continueSteps(opt2, fresh) == first)
    }

    @Test func restoreRejectsMismatchedState() throws {
        let opt = try OptimizerFactory.make(spec: "adam", parameters: sampleParameters())
        var snap = opt.stateSnapshot()
        snap.tensors["fc1.weight"] = ["exp_avg": [1, 2, 3]]
        #expect(throws: OptimError.self) { try opt.restore(snap) }
        // A slot the optimizer does not declare (SGD's buffer in an Adam's state) is refused, not kept.
        var foreign = opt.stateSnapshot()
        let size = sampleParameters()[0].value.count
        foreign.tensors["fc1.weight"] = ["momentum_buffer": [Float](repeating: 0, count: size)]
        #expect { try opt.restore(foreign) } throws: { "\($0)".contains("'momentum_buffer' of 'fc1.weight' is not state adam keeps") }
        let grouped = try OptimizerFactory.make(spec: "adam", rules: ["head.*:lr_scale=2"], parameters: sampleParameters())
        #expect(throws: OptimError.self) { try grouped.restore(opt.stateSnapshot()) }
    }

    @Test func eachGroupReadsItsLRAtEveryStep() throws {
        let params = sampleParameters()
        let opt = try OptimizerFactory.make(spec: "sgd:lr=0.1", rules: ["fc1.*:lr=0"], parameters: params)
        let frozen = params[0].value.storage, moving = params[4].value.storage
        var rng = Grads(state: 1)
        rng.fill(params); opt.step()
        #expect(params[0].value.storage == frozen)           // fc1.weight: lr=0 freezes
        #expect(params[4].value.storage != moving)
        opt.groups.first { $0.name == "fc1" }!.lr = 0.1       // a later write takes effect at the next step
        rng.fill(params); opt.step()
        #expect(params[0].value.storage != frozen)
    }
}

@Suite struct SchedulerBehaviourTests {
    static let specs = [
        "constant", "constantlr:factor=0.5,total_iters=7", "step:step_size=7,gamma=0.5",
        "multistep:milestones=5/9/9/20,gamma=0.5", "exp:gamma=0.9", "cosine:T_max=12,eta_min=0.001",
        "warm_restarts:T_0=4,T_mult=2,eta_min=0.001", "linear:start_factor=0.1,total_iters=6", "warmup:steps=5",
        "poly:total_iters=15,power=2", "onecycle:total_steps=30", "onecycle:max_lr=0.3,total_steps=30,three_phase=true",
        "cyclic:base_lr=0.01,max_lr=0.2,step_size_up=3,mode=triangular2",
        "cyclic:max_lr=0.5,step_size_up=4,step_size_down=2,mode=exp_range,gamma=0.9",
        "warmup:steps=4 -> cosine", "constantlr:factor=0.5,total_iters=3 -> exp:gamma=0.8 -> @12 step:step_size=3",
        "linear:total_iters=3 -> @6 warm_restarts:T_0=3 -> @20 constant",
    ]

    func groups() -> [ParamGroup] {
        [ParamGroup(name: "default", params: [], lr: 0.1), ParamGroup(name: "head", params: [], lr: 0.2)]
    }
    let context = ScheduleContext(totalSteps: 30, stepsPerEpoch: 5)

    /// `plan(count:)` predicts exactly what stepping does, from any state, including after a manual LR write.
    @Test(arguments: specs)
    func planEqualsStepping(_ spec: String) throws {
        let gs = groups()
        let s = try SchedulerFactory.make(spec: spec, groups: gs, context: context)
        for round in 0..<3 {
            let plan = try #require(s.plan(count: 8))
            var stepped: [[Double]] = []
            for _ in 0..<8 { s.step(metric: nil); stepped.append(gs.map(\.lr)) }
            #expect(plan == stepped, "\(spec), round \(round)")
            gs[0].lr *= 0.5   // a manual write between rounds
        }
    }

    /// Snapshot, continue, restore into a fresh scheduler built from the canonical spec, continue: identical.
    @Test(arguments: specs + ["plateau:patience=1,cooldown=1"])
    func stateRoundTrip(_ spec: String) throws {
        let gs = groups()
        let s = try SchedulerFactory.make(spec: spec, groups: gs, context: context)
        let metrics: [Double] = (0..<40).map { 1.0 / Double($0 % 7 + 1) }
        for k in 0..<9 { s.step(metric: metrics[k]) }
        let snap = s.stateSnapshot(), lrs = gs.map(\.lr)
        var first: [[Double]] = []
        for k in 9..<25 { s.step(metric: metrics[k]); first.append(gs.map(\.lr)) }

        let decoded = try JSONDecoder().decode(SchedulerState.self, from: JSONEncoder().encode(snap))
        let gs2 = groups()
        let s2 = try SchedulerFactory.make(spec: s.spec, groups: gs2, context: context)
        try s2.restore(decoded)
        for (g, lr) in zip(gs2, lrs) { g.lr = lr }   // the optimizer state restores the group LRs
        var second: [[Double]] = []
        for k in 9..<25 { s2.step(metric: metrics[k]); second.append(gs2.map(\.lr)) }
        #expect(first == second, "\(spec)")
        #expect(s2.statusText == s.statusText)
    }

    /// Chainable schedulers continue from a manually written LR (PyTorch semantics).
    @Test func manualWriteIsWhatTheScheduleContinuesFrom() throws {
        let g = ParamGroup(name: "default", params: [], lr: 0.1)
        let s = try SchedulerFactory.make(spec: "cosine:T_max=10", groups: [g], context: context)
        for _ in 0..<3 { s.step(metric: nil) }
        g.lr = 0.05
        s.step(metric: nil)
        let ratio = (1 + cos(Double.pi * 4 / 10)) / (1 + cos(Double.pi * 3 / 10))
        #expect(abs(g.lr - 0.05 * ratio) < 1e-15)

        let e = ParamGroup(name: "default", params: [], lr: 0.1)
        let exp = try SchedulerFactory.make(spec: "exp:gamma=0.5", groups: [e], context: context)
        exp.step(metric: nil)
        #expect(e.lr == 0.05)
        e.lr = 1.0
        exp.step(metric: nil)
        #expect(e.lr == 0.5)

        // Absolute schedulers recompute from the step count.
        let c = ParamGroup(name: "default", params: [], lr: 0.1)
        let cyc = try SchedulerFactory.make(spec: "cyclic:base_lr=0.1,max_lr=0.2,step_size_up=2", groups: [c], context: context)
        cyc.step(metric: nil)
        c.lr = 7
        cyc.step(metric: nil)
        #expect(abs(c.lr - 0.2) < 1e-15)
    }

    /// `baseLRs:` continues from the current LR: a new cosine starts where the LR is now, without a jump.
    @Test func newSchedulerContinuesFromCurrentLR() throws {
        let gs = groups()
        let first = try SchedulerFactory.make(spec: "exp:gamma=0.9", groups: gs, context: context)
        for _ in 0..<5 { first.step(metric: nil) }
        let now = gs.map(\.lr)
        let second = try SchedulerFactory.make(spec: "cosine:T_max=20", groups: gs,
                                               context: ScheduleContext(totalSteps: 20, stepsPerEpoch: 1), baseLRs: now)
        #expect(gs.map(\.lr) == now)
        #expect(second.baseLRs == now)
        for _ in 0..<20 { second.step(metric: nil) }
        #expect(gs.allSatisfy { abs($0.lr) < 1e-15 })
        // Without baseLRs, PyTorch's initial_lr: a sequence restarts from the groups' initial LRs.
        _ = try SchedulerFactory.make(spec: "warmup:steps=2 -> cosine", groups: gs, context: context)
        #expect(gs.map(\.lr) == [0.05, 0.1])
    }

    @Test func plateauNeedsAMetricAndHasNoPlan() throws {
        let g = ParamGroup(name: "default", params: [], lr: 0.1)
        let s = try SchedulerFactory.make(spec: "plateau:patience=1,factor=0.5", groups: [g], context: context)
        #expect(s.plan(count: 5) == nil)
        s.step(metric: 1.0)
        for _ in 0..<5 { s.step(metric: nil) }   // ignored
        #expect(g.lr == 0.1)
        s.step(metric: 1.0); s.step(metric: 1.0)
        #expect(g.lr == 0.05)
        #expect(s.statusText == "plateau best=1 patience 0/1")
    }

    @Test func closedFormsFollowTheCurve() throws {
        let g = ParamGroup(name: "default", params: [], lr: 0.1)
        let s = try SchedulerFactory.make(spec: "warmup:steps=4 -> cosine", groups: [g], context: context)
        var stepped = [g.lr]
        for _ in 0..<29 { s.step(metric: nil); stepped.append(g.lr) }
        for k in 0..<30 {
            let closed = try #require(s.closedFormLRs(at: k))[0]
            #expect(abs(closed - stepped[k]) < 1e-12, "step \(k)")
        }
        #expect(s.statusText == "cosine 25/26 [2/2]")
    }
}

@Test func oneStepWarmupIsTheBaseLR() throws {
    let g = ParamGroup(name: "default", params: [], lr: 0.1)
    let s = try SchedulerFactory.make(spec: "warmup:steps=1 -> cosine", groups: [g],
                                      context: ScheduleContext(totalSteps: 10, stepsPerEpoch: 1))
    #expect(g.lr == 0.1)
    #expect(s.closedFormLRs(at: 0) == [0.1])
    s.step(metric: nil)
    #expect(g.lr == 0.1)
    #expect(s.closedFormLRs(at: 1) == [0.1])
}
