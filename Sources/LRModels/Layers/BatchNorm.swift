import LRTensor

/// Batch normalisation over the channel dimension (PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`, affine, eps 1e-5,
/// momentum 0.1). Training uses the batch's statistics and updates the running ones (the running variance is the
/// unbiased one, as PyTorch keeps it); evaluation uses the running statistics.
///
///     x, y, x̂: [N, C] (1-d) or [N, C, H, W] (2-d);  per channel c the statistics run over M = N·H·W values
///     γ (weight), β (bias), running_mean, running_var: [C]
///
///     forward:   x̂ = (x − μ_c) / sqrt(σ²_c + eps),   y = γ_c · x̂ + β_c
///     backward:  dβ += Σ dy,  dγ += Σ dy · x̂,
///                dx = γ/σ · (dy − Σdy/M − x̂ · Σ(dy · x̂)/M)   (training)   or   γ/σ · dy   (evaluation)
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

    private let expectedRank: Int
    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private let normalized = Tensor(shape: [0])
    private var invStd: [Float]
    private var usedBatchStatistics = true

    init(name: String, channels: Int, rank: Int, eps: Float, momentum: Float) {
        precondition(channels > 0, "BatchNorm \(name): channels must be positive")
        self.name = name
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        self.expectedRank = rank
        weight = Parameter(name: name + ".weight", value: Tensor(shape: [channels], repeating: 1))
        bias = Parameter(name: name + ".bias", value: Tensor(shape: [channels], repeating: 0))
        runningMean = Tensor(shape: [channels], repeating: 0)
        runningVar = Tensor(shape: [channels], repeating: 1)
        batchesTracked = Tensor(shape: [], repeating: 0)
        invStd = [Float](repeating: 1, count: channels)
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var buffers: [NamedTensor] {
        [NamedTensor(name: name + ".running_mean", tensor: runningMean),
         NamedTensor(name: name + ".running_var", tensor: runningVar),
         NamedTensor(name: name + ".num_batches_tracked", tensor: batchesTracked)]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == expectedRank && x.shape[1] == channels,
                     "\(name): input \(x.shape), expected \(expectedRank == 2 ? "[N, \(channels)]" : "[N, \(channels), H, W]")")
        let n = x.shape[0], c = channels
        let spatial = x.count / max(1, n * c)
        let m = n * spatial
        output.ensureShape(like: x)
        normalized.ensureShape(like: x)
        usedBatchStatistics = training
        if training {
            precondition(m > 1, "\(name): training needs more than one value per channel, got input \(x.shape)")
            batchesTracked.storage[0] += 1
        }
        x.withReadPointer { px in
            output.withPointer { py in
                normalized.withPointer { pxh in
                    weight.value.withReadPointer { pg in
                        bias.value.withReadPointer { pb in
                            runningMean.withPointer { prm in
                                runningVar.withPointer { prv in
                                    invStd.withUnsafeMutableBufferPointer { inv in
                                        for ch in 0..<c {
                                            var mean: Float, istd: Float
                                            if training {
                                                // Two passes in Double: mean, then the biased variance.
                                                var sum: Double = 0
                                                for s in 0..<n {
                                                    let row = px + (s * c + ch) * spatial
                                                    var acc: Float = 0
                                                    for i in 0..<spatial { acc += row[i] }
                                                    sum += Double(acc)
                                                }
                                                let mu = sum / Double(m)
                                                var sq: Double = 0
                                                let muF = Float(mu)
                                                for s in 0..<n {
                                                    let row = px + (s * c + ch) * spatial
                                                    var acc: Float = 0
                                                    for i in 0..<spatial { let d = row[i] - muF; acc += d * d }
                                                    sq += Double(acc)
                                                }
                                                let variance = sq / Double(m)
                                                mean = muF
                                                istd = Float(1 / (variance + Double(eps)).squareRoot())
                                                let unbiased = variance * Double(m) / Double(m - 1)
                                                prm[ch] = (1 - momentum) * prm[ch] + momentum * muF
                                                prv[ch] = (1 - momentum) * prv[ch] + momentum * Float(unbiased)
                                            } else {
                                                mean = prm[ch]
                                                istd = 1 / (prv[ch] + eps).squareRoot()
                                            }
                                            inv[ch] = istd
                                            let g = pg[ch], b = pb[ch]
                                            for s in 0..<n {
                                                let o = (s * c + ch) * spatial
                                                let xr = px + o, hr = pxh + o, yr = py + o
                                                for i in 0..<spatial {
                                                    let xh = (xr[i] - mean) * istd
                                                    hr[i] = xh
                                                    yr[i] = g * xh + b
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
        let n = normalized.shape[0], c = channels
        let spatial = normalized.count / max(1, n * c)
        let m = n * spatial
        gradInput.ensureShape(like: normalized)  // shaped even when unused: the loop below holds its pointer
        let training = usedBatchStatistics
        gradOutput.withReadPointer { pdy in
            normalized.withReadPointer { pxh in
                weight.value.withReadPointer { pg in
                    weight.grad.withPointer { pdg in
                        bias.grad.withPointer { pdb in
                            invStd.withUnsafeBufferPointer { inv in
                                gradInput.withPointer { pdx in
                                    for ch in 0..<c {
                                        var sumDy: Float = 0, sumDyXh: Float = 0
                                        for s in 0..<n {
                                            let o = (s * c + ch) * spatial
                                            let dr = pdy + o, hr = pxh + o
                                            for i in 0..<spatial { sumDy += dr[i]; sumDyXh += dr[i] * hr[i] }
                                        }
                                        pdb[ch] += sumDy
                                        pdg[ch] += sumDyXh
                                        guard needsInputGradient else { continue }
                                        let k = pg[ch] * inv[ch]
                                        let meanDy = training ? sumDy / Float(m) : 0
                                        let meanDyXh = training ? sumDyXh / Float(m) : 0
                                        for s in 0..<n {
                                            let o = (s * c + ch) * spatial
                                            let dr = pdy + o, hr = pxh + o, xr = pdx + o
                                            for i in 0..<spatial { xr[i] = k * (dr[i] - meanDy - hr[i] * meanDyXh) }
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

/// Batch normalisation of [N, C] features (PyTorch's `nn.BatchNorm1d`). Parameters `<name>.weight`, `<name>.bias`;
/// buffers `<name>.running_mean`, `<name>.running_var`.
public final class BatchNorm1d: BatchNorm, @unchecked Sendable {
    public init(name: String, features: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        super.init(name: name, channels: features, rank: 2, eps: eps, momentum: momentum)
    }
}

/// Batch normalisation of [N, C, H, W] feature maps (PyTorch's `nn.BatchNorm2d`). Names as `BatchNorm1d`.
public final class BatchNorm2d: BatchNorm, @unchecked Sendable {
    public init(name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        super.init(name: name, channels: channels, rank: 4, eps: eps, momentum: momentum)
    }
}
