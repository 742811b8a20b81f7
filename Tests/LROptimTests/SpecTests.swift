import Testing
import LROptim
import LRTensor

/// A small model's parameters: two linear layers, a norm, a head.
func sampleParameters() -> [Parameter] {
    let shapes: [(String, [Int])] = [
        ("fc1.weight", [4, 3]), ("fc1.bias", [4]), ("bn1.weight", [4]), ("bn1.bias", [4]),
        ("fc2.weight", [2, 4]), ("fc2.bias", [2]), ("head.weight", [3, 2]), ("head.bias", [3]),
    ]
    return shapes.enumerated().map { k, s in
        let n = s.1.reduce(1, *)
        return Parameter(name: s.0, value: Tensor(shape: s.1, storage: (0..<n).map { Float(($0 * 7 + k * 3) % 11) / 10 - 0.5 }))
    }
}

func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite struct OptimizerSpecTests {
    @Test func parsesNameAndOptions() throws {
        let opt = try OptimizerFactory.make(spec: "adamw:lr=1e-3,weight_decay=0.01,betas=0.9/0.95,amsgrad=true",
                                            parameters: sampleParameters())
        #expect(opt.name == "adamw")
        #expect(opt is AdamW)
        let g = try #require(opt.groups.first)
        #expect(g.lr == 1e-3)
        #expect(g.hyper["beta1"] == 0.9 && g.hyper["beta2"] == 0.95)
        #expect(g.hyper["weight_decay"] == 0.01 && g.hyper["amsgrad"] == 1 && g.hyper["eps"] == 1e-8)
        #expect(opt.summary.hasPrefix("adamw lr=0.001 betas=(0.9,0.95) eps=1e-8 weight_decay=0.01 amsgrad"))
    }

    @Test func defaultsArePyTorchs() throws {
        let params = sampleParameters()
        #expect(try OptimizerFactory.make(spec: "sgd", parameters: params).groups[0].lr == 1e-3)
        let adamw = try OptimizerFactory.make(spec: "adamw", parameters: params).groups[0]
        #expect(adamw.hyper["weight_decay"] == 0.01)
        #expect(try OptimizerFactory.make(spec: "adam", parameters: params).groups[0].hyper["weight_decay"] == 0)
        #expect(try OptimizerFactory.make(spec: "lion", parameters: params).groups[0].hyper["beta2"] == 0.99)
        #expect(try OptimizerFactory.make(spec: "lamb", parameters: params).groups[0].hyper["max_grad_norm"] == 1.0)
        #expect(try OptimizerFactory.make(spec: "amsbound", parameters: params).groups[0].hyper["amsbound"] == 1)
        for name in OptimizerFactory.names {
            let opt = try OptimizerFactory.make(spec: name, parameters: params)
            #expect(opt.name == name)
            #expect(opt.summary.hasPrefix(name + " lr="))
        }
    }

    @Test func errorsNameTheBadPart() {
        let params = sampleParameters()
        let unknown = errorText { _ = try OptimizerFactory.make(spec: "adamx:lr=1", parameters: params) }
        #expect(unknown?.hasPrefix("unknown optimizer 'adamx' (valid: sgd, adam, adamw,") == true)
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adamw:wd=0.1", parameters: params) }
                == "adamw: unknown parameter 'wd' (valid: lr, betas, eps, weight_decay, amsgrad, maximize)")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adamw:lr=abc", parameters: params) }
                == "adamw: invalid value 'abc' for lr: expected a number")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adamw:lr=1e-3x", parameters: params) }
                == "adamw: invalid value '1e-3x' for lr: expected a number")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adamw:lr", parameters: params) }
                == "adamw: malformed parameter 'lr' (expected key=value)")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adam:betas=0.9", parameters: params) }
                == "adam: invalid value '0.9' for betas: expected two numbers like 0.9/0.999")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "adam:amsgrad=maybe", parameters: params) }
                == "adam: invalid value 'maybe' for amsgrad: expected true or false")
        #expect(errorText { _ = try OptimizerFactory.make(spec: "sgd:lr=1,lr=2", parameters: params) }
                == "sgd: parameter 'lr' given twice")
    }

    @Test func validationUsesPyTorchMessages() {
        let params = sampleParameters()
        func msg(_ spec: String) -> String? { errorText { _ = try OptimizerFactory.make(spec: spec, parameters: params) } }
        #expect(msg("sgd:lr=-1") == "Invalid learning rate: -1.0")
        #expect(msg("adam:betas=1.5/0.999") == "Invalid beta parameter at index 0: 1.5")
        #expect(msg("adam:betas=0.9/1.0") == "Invalid beta parameter at index 1: 1.0")
        #expect(msg("adam:eps=-1e-8") == "Invalid epsilon value: -1e-08")
        #expect(msg("adamw:weight_decay=-0.1") == "Invalid weight_decay value: -0.1")
        #expect(msg("sgd:momentum=-0.9") == "Invalid momentum value: -0.9")
        #expect(msg("sgd:nesterov=true") == "Nesterov momentum requires a momentum and zero dampening")
        #expect(msg("sgd:nesterov=true,momentum=0.9,dampening=0.1") == "Nesterov momentum requires a momentum and zero dampening")
        #expect(msg("rmsprop:alpha=-1") == "Invalid alpha value: -1.0")
        #expect(msg("adadelta:rho=1.5") == "Invalid rho value: 1.5")
        #expect(msg("adagrad:lr_decay=-1") == "Invalid lr_decay value: -1.0")
        #expect(msg("adabound:gamma=1") == "Invalid gamma parameter: 1.0")
        #expect(msg("adabound:final_lr=-1") == "Invalid final learning rate: -1.0")
        #expect(msg("nadam:momentum_decay=-1") == "Invalid momentum_decay value: -1.0")
        #expect(msg("sgd:lr=0.1,momentum=0.9,nesterov=true") == nil)
    }

    @Test func specRoundTrips() throws {
        let spec = try OptimizerSpec(parsing: " AdamW : lr = 3e-4 , betas=0.9/0.95 ")
        #expect(spec.description == "adamw:lr=3e-4,betas=0.9/0.95")
        #expect(try OptimizerSpec(parsing: spec.description) == spec)
    }
}

@Suite struct ParamGroupRuleTests {
    func groups(_ rules: [String], spec: String = "adamw:lr=0.01") throws -> [String: [String]] {
        let opt = try OptimizerFactory.make(spec: spec, rules: rules, parameters: sampleParameters())
        return Dictionary(uniqueKeysWithValues: opt.groups.map { ($0.name, $0.params.map(\.name)) })
    }

    @Test func globsChooseGroupsFirstMatchWins() throws {
        let opt = try OptimizerFactory.make(spec: "adamw:lr=0.01,weight_decay=0.05",
                                            rules: ["head.*:lr_scale=2", "*.bias,*bn*:weight_decay=0", "fc1.*:lr=0"],
                                            parameters: sampleParameters())
        #expect(opt.groups.map(\.name) == ["default", "head", "bias", "fc1"])
        let byName = Dictionary(uniqueKeysWithValues: opt.groups.map { ($0.name, $0) })
        #expect(byName["default"]?.params.map(\.name) == ["fc2.weight"])
        #expect(byName["head"]?.params.map(\.name) == ["head.weight", "head.bias"])
        #expect(byName["bias"]?.params.map(\.name) == ["fc1.bias", "bn1.weight", "bn1.bias", "fc2.bias"])
        #expect(byName["fc1"]?.params.map(\.name) == ["fc1.weight"])
        #expect(byName["default"]?.lr == 0.01 && byName["default"]?.hyper["weight_decay"] == 0.05)
        #expect(byName["head"]?.lr == 0.02 && byName["head"]?.hyper["weight_decay"] == 0.05)
        #expect(byName["bias"]?.lr == 0.01 && byName["bias"]?.hyper["weight_decay"] == 0)
        #expect(byName["fc1"]?.lr == 0)
    }

    @Test func builtinNoDecayTakesLowRankTensors() throws {
        let opt = try OptimizerFactory.make(spec: "adamw:weight_decay=0.1", rules: ["no_decay_bias_norm"],
                                            parameters: sampleParameters())
        #expect(opt.groups.map(\.name) == ["default", "no_decay"])
        #expect(opt.groups[0].params.map(\.name) == ["fc1.weight", "fc2.weight", "head.weight"])
        #expect(opt.groups[0].hyper["weight_decay"] == 0.1)
        #expect(opt.groups[1].params.allSatisfy { $0.value.rank == 1 })
        #expect(opt.groups[1].hyper["weight_decay"] == 0)
    }

    @Test func namesEmptyGroupsAndOverrides() throws {
        let g = try groups(["nothing.*:lr_scale=3", "fc*:name=body,betas=0.8/0.9", "*"])
        #expect(g.keys.sorted() == ["body", "group3"])   // empty group dropped, "*" has no stem
        let opt = try OptimizerFactory.make(spec: "adam", rules: ["fc*:name=body,betas=0.8/0.9"], parameters: sampleParameters())
        #expect(opt.groups.first { $0.name == "body" }?.hyper["beta1"] == 0.8)
        #expect(opt.groups.first { $0.name == "default" }?.hyper["beta1"] == 0.9)
    }

    @Test func ruleTextRoundTripsAndErrors() throws {
        for text in ["head.*:lr_scale=2", "*.bias,*bn*:weight_decay=0", "fc1.*:lr=0.0", "no_decay_bias_norm",
                     "no_decay_bias_norm:lr_scale=0.5", "stage?.block*:name=blocks,momentum=0.8"] {
            let rule = try ParamGroupRule.parse(text)
            #expect(try ParamGroupRule.parse(rule.description) == rule, "\(text) → \(rule.description)")
        }
        #expect(errorText { _ = try ParamGroupRule.parse(":lr=1") }?.contains("no parameter pattern") == true)
        #expect(errorText { _ = try ParamGroupRule.parse("head.*:lr_scale=x") }
                == "group rule 'head.*:lr_scale=x': invalid value 'x' for lr_scale: expected a number >= 0")
        #expect(errorText { _ = try ParamGroupRule.parse("head.*:lr=1,lr_scale=2") }?.contains("either lr or lr_scale") == true)
        // Unknown optimizer keys in a rule are reported when the optimizer is built.
        #expect(errorText { _ = try OptimizerFactory.make(spec: "sgd", rules: ["head.*:betas=0.9/0.99"], parameters: sampleParameters()) }
                == "sgd: unknown parameter 'betas' (valid: lr, momentum, dampening, weight_decay, nesterov, maximize)")
        #expect(try ParamGroupRule.parse(lines: ["# comment", "", "head.*:lr_scale=2"]).count == 1)
    }
}

@Suite struct SchedulerSpecTests {
    let context = ScheduleContext(totalSteps: 100, stepsPerEpoch: 10)

    func make(_ spec: String, lr: Double = 0.1, groups: Int = 1) throws -> (SchedulerBase, [ParamGroup]) {
        let gs = (0..<groups).map { ParamGroup(name: "g\($0)", params: [], lr: lr * Double($0 + 1)) }
        return (try SchedulerFactory.make(spec: spec, groups: gs, context: context), gs)
    }

    @Test func errorsNameTheBadPartAndListValidNames() {
        let unknown = errorText { _ = try make("cosin") }
        #expect(unknown?.hasPrefix("unknown scheduler 'cosin' (valid: constant, constantlr, step, multistep, exp, cosine,") == true)
        #expect(errorText { _ = try make("cosine:Tmax=10") } == "cosine: unknown parameter 'Tmax' (valid: T_max, eta_min)")
        #expect(errorText { _ = try make("step") } == "step: missing parameter 'step_size'")
        #expect(errorText { _ = try make("step:step_size=2.5") } == "step: invalid value '2.5' for step_size: expected an integer")
        #expect(errorText { _ = try make("multistep:milestones=30/x") }
                == "multistep: invalid value '30/x' for milestones: expected integers separated by '/', like 30/80")
        #expect(errorText { _ = try make("plateau:mode=up") } == "plateau: invalid value 'up' for mode: expected one of min, max")
        #expect(errorText { _ = try make("exp:gamma=0.9 -> cosine") }?.hasPrefix("'exp' has no fixed length") == true)
        #expect(errorText { _ = try make("warmup:steps=5 -> plateau") }?.contains("plateau cannot be part") == true)
        #expect(errorText { _ = try make("@5 cosine") }?.contains("first starts at 0") == true)
        #expect(errorText { _ = try make("warmup:steps=10 -> @5 cosine -> @5 exp:gamma=0.5") }?.contains("not after the previous part") == true)
        #expect(errorText { _ = try make("constantlr:factor=2") } == "constantlr: Constant multiplicative factor expected to be between 0 and 1.")
        #expect(errorText { _ = try make("onecycle:cycle_momentum=true") }?.contains("not supported") == true)
    }

    @Test func namesAliasesAndPyTorchClassNames() throws {
        #expect(try make("exponential:gamma=0.5").0.spec == "exp:gamma=0.5")
        #expect(try make("ExponentialLR:gamma=0.5").0.spec == "exp:gamma=0.5")
        #expect(try make("cosine_restarts:T_0=10").0.spec == "warm_restarts:T_0=10,T_mult=1,eta_min=0")
        #expect(try make("none").0.spec == "constant")
    }

    @Test func canonicalSpecsRoundTrip() throws {
        let specs = ["constant", "constantlr", "step:step_size=30", "multistep:milestones=30/80,gamma=0.5", "exp:gamma=0.95",
                     "cosine", "cosine:T_max=50,eta_min=1e-5", "warm_restarts:T_0=10,T_mult=2", "linear", "warmup:steps=10",
                     "poly:power=2", "onecycle:max_lr=0.5", "onecycle:three_phase=true,anneal_strategy=linear",
                     "cyclic:max_lr=1,step_size_up=5,mode=exp_range,gamma=0.99", "plateau:patience=3,min_lr=1e-4",
                     "warmup:steps=5 -> cosine", "linear:start_factor=0.5,total_iters=4 -> @10 exp:gamma=0.9",
                     "warmup:steps=10 -> constant -> @60 poly"]
        for text in specs {
            let (s, _) = try make(text)
            let (again, _) = try make(s.spec)
            #expect(again.spec == s.spec, "\(text) → \(s.spec) → \(again.spec)")
            #expect(try SchedulerFactory.validate(spec: text, context: context) == s.spec)
        }
        #expect(try make("warmup:steps=5 -> cosine").0.spec == "warmup:steps=5,start_factor=0.2 -> @5 cosine:T_max=95,eta_min=0")
        #expect(try make("cosine").0.spec == "cosine:T_max=100,eta_min=0")
    }

    /// `warmup:steps=W -> cosine` reproduces the seed's schedule: base·(e+1)/W for e < W, then cosine over
    /// the rest of the run (the `sched_warmup_cosine` golden file, written the short way).
    @Test func warmupShorthandMatchesTheSeedSchedule() throws {
        let (s, g) = try make("warmup:steps=5 -> cosine", lr: 0.001)
        var lrs = [g[0].lr]
        for _ in 0..<6 { s.step(metric: nil); lrs.append(g[0].lr) }
        let want = [0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.001]
        for k in 0..<want.count { #expect(abs(lrs[k] - want[k]) < 1e-15) }
        #expect(abs(lrs[6] - 0.000999726628670463) < 1e-15)
    }
}
