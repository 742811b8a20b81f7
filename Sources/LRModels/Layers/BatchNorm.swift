import LRTensor

/// Batch normalisation over the channel dimension (PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`, affine, eps 1e-5,
/// momentum 0.1), optionally followed by a ReLU in the same pass. Training uses the batch's statistics and updates
/// the running ones (the running variance is the unbiased one, as PyTorch keeps it); evaluation uses the running
/// statistics.
///
///     x, y: [N, C] (1-d) or [N, C, H, W] (2-d);  per channel c the statistics run over M = N·H·W values
///     γ (weight), β (bias), running_mean, running_var: [C]
///
///     forward:   x̂ = (x − μ_c) / sqrt(σ²_c + eps),   y = γ_c · x̂ + β_c        (fused: y = max(γ_c · x̂ + β_c, 0))
///     backward:  g = dy (fused: dy where y > 0, else 0)
///                dβ += Σ g,  dγ += Σ g · x̂,
///                dx = γ/σ · (g − Σg/M − x̂ · Σ(g · x̂)/M)   (training)   or   γ/σ · g   (evaluation)
///
/// x̂ is recomputed from the input in backward instead of stored: one array less written and read per step.
/// Channels are independent, so they are split across the layer threads (`LayerThreads`).
public class BatchNorm: Layer, @unchecked Sendable {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// Training forwards seen, PyTorch's `num_batches_tracked` (a count kept as a one-element Float tensor so it
    /// travels with the other buffers; exact up to 2^24 batches).
    public let batchesTracked: Tensor
    public let name: String
    /// A ReLU applied in the same pass (PyTorch's twin: `relu(bn(x))`).
    public let fusedReLU: Bool

    /// [N, C, H, W] or [N, H, W, C] (`BatchNorm+ChannelsLast.swift`); [N, C] for the 1-d norm.
    public let layout: ActivationLayout

    private let expectedRank: Int
    let output = Tensor(shape: [0])
    let gradInput = Tensor(shape: [0])
    var input: Tensor?
    var mean: [Float]
    var invStd: [Float]
    var usedBatchStatistics = true
    /// The channel-last path's partial sums per chunk of samples (two per channel), kept between steps.
    var chunkSums: [Double] = []
    var sampleSums: [Float] = []
    var channelTotals: [Double] = []
    let ownMoments = SampleMoments()
    /// Moments of the training input recorded by the convolution that produced it (`takeStatistics(from:)`).
    var inputMoments: SampleMoments?
    var gradientCoefficients: [Float] = []

    init(name: String, channels: Int, rank: Int, eps: Float, momentum: Float, fusedReLU: Bool,
         layout: ActivationLayout = .channelsFirst) {
        self.layout = layout
        precondition(channels > 0, "BatchNorm \(name): channels must be positive")
        self.name = name
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        self.expectedRank = rank
        self.fusedReLU = fusedReLU
        weight = Parameter(name: name + ".weight", value: Tensor(shape: [channels], repeating: 1))
        bias = Parameter(name: name + ".bias", value: Tensor(shape: [channels], repeating: 0))
        runningMean = Tensor(shape: [channels], repeating: 0)
        runningVar = Tensor(shape: [channels], repeating: 1)
        batchesTracked = Tensor(shape: [], repeating: 0)
        mean = [Float](repeating: 0, count: channels)
        invStd = [Float](repeating: 1, count: channels)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var buffers: [NamedTensor] {
        [NamedTensor(name: name + ".running_mean", tensor: runningMean),
         NamedTensor(name: name + ".running_var", tensor: runningVar),
         NamedTensor(name: name + ".num_batches_tracked", tensor: batchesTracked)]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if layout == .channelsLast {
            precondition(x.rank == 4 && x.shape[3] == channels, "\(name): input \(x.shape), expected [N, H, W, \(channels)]")
            return channelsLastForward(x, training: training)
        }
        precondition(x.rank == expectedRank && x.shape[1] == channels,
                     "\(name): input \(x.shape), expected \(expectedRank == 2 ? "[N, \(channels)]" : "[N, \(channels), H, W]")")
        let n = x.shape[0], c = channels
        let spatial = x.count / max(1, n * c)
        let m = n * spatial
        input = x
        output.ensureShape(like: x)
        usedBatchStatistics = training
        if training {
            precondition(m > 1, "\(name): training needs more than one value per channel, got input \(x.shape)")
            batchesTracked.storage[0] += 1
        }
        let relu = fusedReLU
        x.withReadPointer { px in
            output.withPointer { py in
                weight.value.withReadPointer { pg in
                    bias.value.withReadPointer { pb in
                        runningMean.withPointer { prm in
                            runningVar.withPointer { prv in
                                mean.withUnsafeMutableBufferPointer { mu in
                                    invStd.withUnsafeMutableBufferPointer { inv in
                                        // Each worker writes only its own channels.
                                        nonisolated(unsafe) let (px, py, pg, pb) = (px, py, pg, pb)
                                        nonisolated(unsafe) let (prm, prv, mu, inv) = (prm, prv, mu, inv)
                                        let (eps, momentum) = (eps, momentum)
                                        LayerThreads.forEachChunk(c, workers: LayerThreads.workers(for: c)) { _, ch in
                                            if training {
                                                // Two passes (mean, then centred squares), Float lanes summed in
                                                // Double per row: a channel's rows stay in cache between passes.
                                                var sum: Double = 0
                                                for s in 0..<n { sum += Double(laneSum(px + (s * c + ch) * spatial, spatial)) }
                                                let muF = Float(sum / Double(m))
                                                var sq: Double = 0
                                                for s in 0..<n { sq += Double(centredSquares(px + (s * c + ch) * spatial, spatial, muF)) }
                                                let variance = sq / Double(m)
                                                mu[ch] = muF
                                                inv[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                                                let unbiased = variance * Double(m) / Double(m - 1)
                                                prm[ch] = (1 - momentum) * prm[ch] + momentum * muF
                                                prv[ch] = (1 - momentum) * prv[ch] + momentum * Float(unbiased)
                                            } else {
                                                mu[ch] = prm[ch]
                                                inv[ch] = 1 / (prv[ch] + eps).squareRoot()
                                            }
                                            let g = pg[ch], b = pb[ch], meanC = mu[ch], istd = inv[ch]
                                            for s in 0..<n {
                                                let o = (s * c + ch) * spatial
                                                let xr = px + o, yr = py + o
                                                if relu {
                                                    for i in 0..<spatial { let v = g * ((xr[i] - meanC) * istd) + b; yr[i] = v > 0 ? v : 0 }
                                                } else {
                                                    for i in 0..<spatial { yr[i] = g * ((xr[i] - meanC) * istd) + b }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("\(name).backward before forward") }
        if layout == .channelsLast { return channelsLastBackward(x, gradOutput: gradOutput, needsInputGradient: needsInputGradient) }
        let n = x.shape[0], c = channels
        let spatial = x.count / max(1, n * c)
        let m = n * spatial
        gradInput.ensureShape(like: x)  // shaped even when unused: the loop below holds its pointer
        let training = usedBatchStatistics, relu = fusedReLU
        gradOutput.withReadPointer { pdy in
            x.withReadPointer { px in
                output.withReadPointer { py in
                    weight.value.withReadPointer { pg in
                        weight.grad.withPointer { pdg in
                            bias.grad.withPointer { pdb in
                                mean.withUnsafeBufferPointer { mu in
                                    invStd.withUnsafeBufferPointer { inv in
                                        gradInput.withPointer { pdx in
                                            // Each worker writes only its own channels.
                                            nonisolated(unsafe) let (pdy, px, py, pg, pdx) = (pdy, px, py, pg, pdx)
                                            nonisolated(unsafe) let (pdg, pdb, mu, inv) = (pdg, pdb, mu, inv)
                                            LayerThreads.forEachChunk(c, workers: LayerThreads.workers(for: c)) { _, ch in
                                                let meanC = mu[ch], istd = inv[ch]
                                                var sumG: Double = 0, sumGX: Double = 0
                                                for s in 0..<n {
                                                    let o = (s * c + ch) * spatial
                                                    let (a, b) = gradientSums(pdy + o, px + o, relu ? py + o : nil, spatial, meanC)
                                                    sumG += Double(a); sumGX += Double(b)
                                                }
                                                // Σ g·x̂ = istd · Σ g·(x − μ)
                                                let sumDy = Float(sumG), sumDyXh = Float(sumGX) * istd
                                                pdb[ch] += sumDy
                                                pdg[ch] += sumDyXh
                                                guard needsInputGradient else { return }
                                                let k = pg[ch] * istd
                                                let meanDy = training ? sumDy / Float(m) : 0
                                                let meanDyXh = training ? sumDyXh / Float(m) : 0
                                                for s in 0..<n {
                                                    let o = (s * c + ch) * spatial
                                                    let dr = pdy + o, xr = px + o, yr = py + o, dxr = pdx + o
                                                    if relu {
                                                        for i in 0..<spatial {
                                                            let gi = yr[i] > 0 ? dr[i] : 0
                                                            dxr[i] = k * (gi - meanDy - (xr[i] - meanC) * istd * meanDyXh)
                                                        }
                                                    } else {
                                                        for i in 0..<spatial {
                                                            dxr[i] = k * (dr[i] - meanDy - (xr[i] - meanC) * istd * meanDyXh)
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return needsInputGradient ? gradInput : gradOutput
    }
}

// Reductions in 16 Float lanes: a single running sum waits on every add in turn and does not vectorise.

@inline(__always)
private func load8(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
}

/// Σ x[0..<n]
@inline(__always)
func laneSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var i = 0
    while i + 16 <= n { a += load8(x, i); b += load8(x, i + 8); i += 16 }
    var tail: Float = 0
    while i < n { tail += x[i]; i += 1 }
    return (a + b).sum() + tail
}

/// Σ (x − μ)²
@inline(__always)
func centredSquares(_ x: UnsafePointer<Float>, _ n: Int, _ mu: Float) -> Float {
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    let m = SIMD8<Float>(repeating: mu)
    var i = 0
    while i + 16 <= n {
        let d0 = load8(x, i) - m, d1 = load8(x, i + 8) - m
        a += d0 * d0; b += d1 * d1
        i += 16
    }
    var tail: Float = 0
    while i < n { let d = x[i] - mu; tail += d * d; i += 1 }
    return (a + b).sum() + tail
}

/// (Σ g, Σ g·(x − μ)) where g = dy, or dy masked by y > 0 when `y` is given (a fused ReLU).
@inline(__always)
func gradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>?, _ n: Int,
                  _ mu: Float) -> (Float, Float) {
    var s = SIMD8<Float>(), d = SIMD8<Float>()
    let m = SIMD8<Float>(repeating: mu), zero = SIMD8<Float>()
    var i = 0
    var tailS: Float = 0, tailD: Float = 0
    if let y {
        while i + 8 <= n {
            let g = load8(dy, i).replacing(with: zero, where: load8(y, i) .<= zero)
            s += g; d += g * (load8(x, i) - m)
            i += 8
        }
        while i < n { let g = y[i] > 0 ? dy[i] : 0; tailS += g; tailD += g * (x[i] - mu); i += 1 }
    } else {
        while i + 8 <= n {
            let g = load8(dy, i)
            s += g; d += g * (load8(x, i) - m)
            i += 8
        }
        while i < n { tailS += dy[i]; tailD += dy[i] * (x[i] - mu); i += 1 }
    }
    return (s.sum() + tailS, d.sum() + tailD)
}

/// Batch normalisation of [N, C] features (PyTorch's `nn.BatchNorm1d`). Parameters `<name>.weight`, `<name>.bias`;
/// buffers `<name>.running_mean`, `<name>.running_var`, `<name>.num_batches_tracked`.
public final class BatchNorm1d: BatchNorm, @unchecked Sendable {
    public init(name: String, features: Int, eps: Float = 1e-5, momentum: Float = 0.1, fusedReLU: Bool = false) {
        super.init(name: name, channels: features, rank: 2, eps: eps, momentum: momentum, fusedReLU: fusedReLU)
    }
}

/// Batch normalisation of [N, C, H, W] (or, channel-last, [N, H, W, C]) feature maps (PyTorch's `nn.BatchNorm2d`).
/// Names as `BatchNorm1d`.
public final class BatchNorm2d: BatchNorm, @unchecked Sendable {
    public init(name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, fusedReLU: Bool = false,
                layout: ActivationLayout = .channelsFirst) {
        super.init(name: name, channels: channels, rank: 4, eps: eps, momentum: momentum, fusedReLU: fusedReLU,
                   layout: layout)
    }
}
