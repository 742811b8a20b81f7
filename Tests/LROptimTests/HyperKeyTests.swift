import Testing
import LROptim
import LRTensor

@Suite struct HyperKeyTests {
    /// A group built without hyperparameters reads its optimizer's defaults through `group[.key]`; the groups the
    /// factory builds hold the spec's values under the same keys.
    @Test func groupsReadTypedKeysOverTheSameDictionary() throws {
        let bare = ParamGroup(name: "bare", params: [], lr: 0.1)
        _ = Adam(groups: [bare], descriptor: AdamW.decoupledKind)
        #expect(bare[.beta1] == 0.9 && bare[.beta2] == 0.999 && bare[.eps] == 1e-8 && bare[.weightDecay] == 0.01)
        #expect(bare.hyper["weight_decay"] == bare[.weightDecay])
        let opt = try OptimizerFactory.make(spec: "lamb:betas=0.8/0.95,max_grad_norm=none,trust_clip=true",
                                            parameters: sampleParameters())
        let g = try #require(opt.groups.first)
        #expect(g[.beta1] == 0.8 && g[.beta2] == 0.95 && g[.maxGradNorm] == 0 && g[.trustClip] == 1)
        // A spec's value is kept where a default would fill the same key.
        let given = ParamGroup(name: "given", params: [], lr: 0.1, hyper: ["eps": 1e-6])
        _ = Adam(groups: [given], descriptor: Adam.kind)
        #expect(given[.eps] == 1e-6 && given[.beta1] == 0.9)
    }
}
