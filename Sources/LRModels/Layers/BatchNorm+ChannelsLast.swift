import LRTensor

/// The channel-last batch norm: [N, H, W, C] is [M, C] with M = N·H·W and a pixel's channels contiguous, so every
/// pass walks the pixels in memory order with the channels in vectors. Samples go to the layer threads in chunks
/// (`LayerThreads`). Every sum is a Float sum over one sample's pixels, then a Double sum over samples in sample or
/// chunk order, so the results are the same for any thread count. Memory traffic is what the layer costs, so
/// forward reads the batch twice (statistics, with each sample read again from the cache; then normalisation) and
/// backward twice (sums, then dx), the fused ReLU's mask recomputed from x instead of read from y. The arithmetic
/// per element is the channels-first path's.
extension BatchNorm {
    private func prepareChannelsLastScratch(chunks: Int) {
        let c = channels
        if chunkSums.count != 2 * c * chunks { chunkSums = [Double](repeating: 0, count: 2 * c * chunks) }
        if sampleSums.count != 2 * c * chunks { sampleSums = [Float](repeating: 0, count: 2 * c * chunks) }
        if channelTotals.count != 2 * c { channelTotals = [Double](repeating: 0, count: 2 * c) }
        if gradientCoefficients.count != 3 * c { gradientCoefficients = [Float](repeating: 0, count: 3 * c) }
    }

    /// Runs `perSample(sample, Float sums [2C])` over every sample, chunks on the layer threads, then returns
    /// the per-channel totals Σ_samples (first C: the first sum, next C: the second) in `totals`, chunk by chunk.
    /// The scratch must be prepared for the batch.
    private func reduceSamples(_ n: Int, into totals: UnsafeMutablePointer<Double>,
                               _ perSample: @Sendable (_ sample: Int, _ sums: UnsafeMutablePointer<Float>) -> Void) {
        let c = channels
        let chunks = LayerThreads.chunks(samples: n), workers = LayerThreads.workers(for: chunks)
        chunkSums.withUnsafeMutableBufferPointer { partial in
            sampleSums.withUnsafeMutableBufferPointer { scratch in
                nonisolated(unsafe) let (partial, scratch) = (partial.baseAddress!, scratch.baseAddress!)
                LayerThreads.forEachChunk(chunks, workers: workers) { _, chunk in
                    let total = partial + chunk * 2 * c, acc = scratch + chunk * 2 * c
                    total.update(repeating: 0, count: 2 * c)
                    for s in LayerThreads.samples(ofChunk: chunk, batch: n) {
                        acc.update(repeating: 0, count: 2 * c)
                        perSample(s, acc)
                        for i in 0..<2 * c { total[i] += Double(acc[i]) }
                    }
                }
                totals.update(repeating: 0, count: 2 * c)
                for chunk in 0..<chunks {
                    for i in 0..<2 * c { totals[i] += partial[chunk * 2 * c + i] }
                }
            }
        }
    }

    func channelsLastForward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.shape[0], c = channels, pixels = x.shape[1] * x.shape[2], m = n * pixels, sample = pixels * c
        input = x
        output.ensureShape(like: x)
        usedBatchStatistics = training
        if training {
            precondition(m > 1, "\(name): training needs more than one value per channel, got input \(x.shape)")
            batchesTracked.storage[0] += 1
            batchStatistics(x, samples: n, pixels: pixels)
        } else {
            runningMean.withReadPointer { prm in
                runningVar.withReadPointer { prv in
                    for ch in 0..<c {
                        mean[ch] = prm[ch]
                        invStd[ch] = 1 / (prv[ch] + eps).squareRoot()
                    }
                }
            }
        }
        x.withReadPointer { px in
            mean.withUnsafeBufferPointer { mu in
                invStd.withUnsafeBufferPointer { inv in
                    output.withPointer { py in
                        weight.value.withReadPointer { pg in
                            bias.value.withReadPointer { pb in
                                nonisolated(unsafe) let (px, py, pg, pb, mu, inv) = (px, py, pg, pb, mu.baseAddress!, inv.baseAddress!)
                                let relu = fusedReLU
                                LayerThreads.forEachElementChunk(samples: n, perSample: sample) { elements in
                                    normalisePixels(px + elements.lowerBound, py + elements.lowerBound,
                                                    elements.count / c, c, gamma: pg, beta: pb, mean: mu, invStd: inv,
                                                    relu: relu)
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    /// The batch's mean and 1/σ per channel into `mean`, `invStd`, and the running statistics updated. Each sample
    /// is read twice while it is in the cache, for its own sum and its squares around its own mean a_s; the
    /// samples' moments are then combined in sample order, in Double:
    ///
    ///     μ = Σ_s sum_s / M,   M·σ² = Σ_s [ Σ_p (x − a_s)² + 2(a_s − μ)(sum_s − P·a_s) + P(a_s − μ)² ]
    ///
    /// which is Σ (x − μ)² exactly, without a third pass over the batch.
    private func batchStatistics(_ x: Tensor, samples n: Int, pixels: Int) {
        let c = channels, m = n * pixels, sample = pixels * c
        let moments: SampleMoments
        if let given = inputMoments, given.describes(x, samples: n, channels: c) {
            moments = given
        } else {
            moments = ownMoments
            moments.prepare(samples: n, channels: c)
            x.withReadPointer { px in
                nonisolated(unsafe) let px = px
                let chunks = LayerThreads.chunks(samples: n)
                LayerThreads.forEachChunk(chunks, workers: LayerThreads.workers(for: chunks)) { _, chunk in
                    for s in LayerThreads.samples(ofChunk: chunk, batch: n) {
                        moments.record(sample: s, px + s * sample, pixels: pixels)
                    }
                }
            }
        }
        inputMoments?.source = nil
        let p = Double(pixels), values = moments.values
        runningMean.withPointer { prm in
            runningVar.withPointer { prv in
                for ch in 0..<c {
                    var total = 0.0
                    for s in 0..<n { total += Double(values[3 * c * s + ch]) }
                    let mu = total / Double(m)
                    var squares = 0.0
                    for s in 0..<n {
                        let sum = Double(values[3 * c * s + ch]), a = Double(values[3 * c * s + c + ch])
                        let d = a - mu
                        squares += Double(values[3 * c * s + 2 * c + ch]) + 2 * d * (sum - p * a) + p * d * d
                    }
                    let variance = max(0, squares / Double(m))
                    mean[ch] = Float(mu)
                    invStd[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                    let unbiased = variance * Double(m) / Double(m - 1)
                    prm[ch] = (1 - momentum) * prm[ch] + momentum * Float(mu)
                    prv[ch] = (1 - momentum) * prv[ch] + momentum * Float(unbiased)
                }
            }
        }
    }

    /// Lets `conv` (channel-last, feeding this batch norm) record the per-sample moments of its output while
    /// each sample is still in the cache, so training statistics take no pass of their own over the batch. The
    /// numbers are the ones this layer would compute, bit for bit.
    public func takeStatistics(from conv: Conv2d) {
        guard layout == .channelsLast, conv.layout == .channelsLast, conv.outChannels == channels else { return }
        let moments = SampleMoments()
        conv.outputMoments = moments
        inputMoments = moments
    }

    func channelsLastBackward(_ x: Tensor, gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let n = x.shape[0], c = channels, pixels = x.shape[1] * x.shape[2], m = n * pixels, sample = pixels * c
        gradInput.ensureShape(like: x)
        let training = usedBatchStatistics, relu = fusedReLU
        prepareChannelsLastScratch(chunks: LayerThreads.chunks(samples: n))
        withStatePointers(gradOutput: gradOutput, x: x) { pdy, px, mu, inv, pg, pb, totals in
            // Read-only here and in the workers.
            nonisolated(unsafe) let (pdy, px, mu, inv) = (pdy, px, mu, inv)
            // The fused ReLU's mask is recomputed from x as forward computed y, bit for bit: one stream less to read.
            let mask = relu ? ReLUMask(gamma: pg, beta: pb, invStd: inv) : nil
            reduceSamples(n, into: totals) { s, acc in
                gradientPixelSums(pdy + s * sample, px + s * sample, mask, pixels, c, mean: mu, into: acc)
            }
            // Σ g·x̂ = istd · Σ g·(x − μ)
            weight.grad.withPointer { pdg in
                bias.grad.withPointer { pdb in
                    for ch in 0..<c {
                        pdb[ch] += Float(totals[ch])
                        pdg[ch] += Float(totals[c + ch]) * inv[ch]
                    }
                }
            }
            guard needsInputGradient else { return }
            gradientCoefficients.withUnsafeMutableBufferPointer { buffer in
                // Per channel: k = γ·istd, the mean of g, the mean of g·x̂.
                let coefficients = buffer.baseAddress!
                for ch in 0..<c {
                    let sumDy = Float(totals[ch]), sumDyXh = Float(totals[c + ch]) * inv[ch]
                    coefficients[ch] = pg[ch] * inv[ch]
                    coefficients[c + ch] = training ? sumDy / Float(m) : 0
                    coefficients[2 * c + ch] = training ? sumDyXh / Float(m) : 0
                }
                gradInput.withPointer { pdx in
                    nonisolated(unsafe) let (pdx, coefficients) = (pdx, UnsafePointer(coefficients))
                    LayerThreads.forEachElementChunk(samples: n, perSample: sample) { elements in
                        let o = elements.lowerBound
                        inputGradientPixels(pdy + o, px + o, mask, into: pdx + o, elements.count / c, c, mean: mu,
                                            invStd: inv, coefficients: coefficients)
                    }
                }
            }
        }
        return needsInputGradient ? gradInput : gradOutput
    }

    /// The pointers backward reads, taken once.
    private func withStatePointers(
        gradOutput: Tensor, x: Tensor,
        _ body: (_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                 _ invStd: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>,
                 _ totals: UnsafeMutablePointer<Double>) -> Void
    ) {
        gradOutput.withReadPointer { pdy in
            x.withReadPointer { px in
                mean.withUnsafeBufferPointer { mu in
                    invStd.withUnsafeBufferPointer { inv in
                        weight.value.withReadPointer { pg in
                            bias.value.withReadPointer { pb in
                                channelTotals.withUnsafeMutableBufferPointer { totals in
                                    body(pdy, px, mu.baseAddress!, inv.baseAddress!, pg, pb, totals.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where a fused ReLU passed the gradient: γ·((x − μ)·istd) + β > 0.
private struct ReLUMask: @unchecked Sendable {
    let gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, invStd: UnsafePointer<Float>

    /// dy where the output γ·((x − μ)·istd) + β was positive, else 0: channels `channel ..< channel + 8`.
    @inline(__always)
    func gradient(_ dy: SIMD8<Float>, centred: SIMD8<Float>, channel ch: Int) -> SIMD8<Float> {
        let y = vload(gamma + ch) * (centred * vload(invStd + ch)) + vload(beta + ch)
        return dy.replacing(with: SIMD8<Float>(), where: y .<= SIMD8<Float>())
    }

    /// The same for one channel.
    @inline(__always)
    func gradient(_ dy: Float, centred: Float, channel ch: Int) -> Float {
        gamma[ch] * (centred * invStd[ch]) + beta[ch] <= 0 ? 0 : dy
    }
}

/// Per-sample channel moments of a channel-last activation [N, P, C]: for sample s, Σ_p x [C], its mean a_s [C]
/// and Σ_p (x − a_s)² [C], each a Float sum in pixel order. A batch norm combines them into its statistics; a
/// convolution that feeds one records them as it writes its output (`BatchNorm.takeStatistics(from:)`).
public final class SampleMoments: @unchecked Sendable {
    private(set) var values: UnsafeMutablePointer<Float>
    private var capacity = 0
    private(set) var channels = 0
    /// The activation these moments describe, set by the producer after a training forward and cleared when read.
    var source: ObjectIdentifier?
    private(set) var samples = 0

    public init() { values = .allocate(capacity: 1) }
    deinit { values.deallocate() }

    /// Sizes the buffer for a batch (allocating only when it grows) and forgets the previous batch.
    func prepare(samples n: Int, channels c: Int) {
        if 3 * c * n > capacity {
            values.deallocate()
            capacity = 3 * c * n
            values = .allocate(capacity: capacity)
        }
        samples = n
        channels = c
        source = nil
    }

    /// Sample `s`'s moments of `x` [pixels][C]; samples may be recorded from several threads at once.
    func record(sample s: Int, _ x: UnsafePointer<Float>, pixels: Int) {
        let c = channels
        let sum = values + 3 * c * s, centre = sum + c, squares = sum + 2 * c
        sum.update(repeating: 0, count: c)
        squares.update(repeating: 0, count: c)
        pixelSums(x, pixels, c, into: sum)
        for ch in 0..<c { centre[ch] = sum[ch] / Float(pixels) }
        centredPixelSquares(x, pixels, c, mean: centre, into: squares)
    }

    /// Whether these are the moments of `x`, just recorded.
    func describes(_ x: Tensor, samples n: Int, channels c: Int) -> Bool {
        source == ObjectIdentifier(x) && samples == n && channels == c
    }
}

// Loops over `pixels` rows of `c` channels: 8-channel vectors, then single channels. Accumulators live in the
// caller's buffer (one pixel's worth), so the order of every sum is pixel order whatever the channel count.

@inline(__always)
private func vload(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func vstore(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// acc[ch] += Σ_p x[p][ch]
private func pixelSums(_ x: UnsafePointer<Float>, _ pixels: Int, _ c: Int, into acc: UnsafeMutablePointer<Float>) {
    for p in 0..<pixels {
        let row = x + p * c
        var ch = 0
        while ch + 8 <= c { vstore(vload(acc + ch) + vload(row + ch), acc + ch); ch += 8 }
        while ch < c { acc[ch] += row[ch]; ch += 1 }
    }
}

/// acc[ch] += Σ_p (x[p][ch] − μ[ch])²
private func centredPixelSquares(_ x: UnsafePointer<Float>, _ pixels: Int, _ c: Int, mean: UnsafePointer<Float>,
                                 into acc: UnsafeMutablePointer<Float>) {
    for p in 0..<pixels {
        let row = x + p * c
        var ch = 0
        while ch + 8 <= c {
            let d = vload(row + ch) - vload(mean + ch)
            vstore(vload(acc + ch) + d * d, acc + ch)
            ch += 8
        }
        while ch < c { let d = row[ch] - mean[ch]; acc[ch] += d * d; ch += 1 }
    }
}

/// acc[ch] += Σ_p g, acc[C + ch] += Σ_p g·(x − μ), g = dy (zero where a fused ReLU's output was zero)
private func gradientPixelSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mask: ReLUMask?,
                               _ pixels: Int, _ c: Int, mean: UnsafePointer<Float>, into acc: UnsafeMutablePointer<Float>) {
    let accD = acc + c
    for p in 0..<pixels {
        let o = p * c
        var ch = 0
        while ch + 8 <= c {
            let centred = vload(x + o + ch) - vload(mean + ch)
            let g = mask?.gradient(vload(dy + o + ch), centred: centred, channel: ch) ?? vload(dy + o + ch)
            vstore(vload(acc + ch) + g, acc + ch)
            vstore(vload(accD + ch) + g * centred, accD + ch)
            ch += 8
        }
        while ch < c {
            let centred = x[o + ch] - mean[ch]
            let g = mask?.gradient(dy[o + ch], centred: centred, channel: ch) ?? dy[o + ch]
            acc[ch] += g
            accD[ch] += g * centred
            ch += 1
        }
    }
}

/// y = γ·((x − μ)·istd) + β, then max(·, 0) when `relu`
private func normalisePixels(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ pixels: Int, _ c: Int,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                             invStd: UnsafePointer<Float>, relu: Bool) {
    let zero = SIMD8<Float>()
    for p in 0..<pixels {
        let o = p * c
        var ch = 0
        while ch + 8 <= c {
            var v = vload(gamma + ch) * ((vload(x + o + ch) - vload(mean + ch)) * vload(invStd + ch)) + vload(beta + ch)
            if relu { v = v.replacing(with: zero, where: v .<= zero) }
            vstore(v, y + o + ch)
            ch += 8
        }
        while ch < c {
            let v = gamma[ch] * ((x[o + ch] - mean[ch]) * invStd[ch]) + beta[ch]
            y[o + ch] = relu ? (v > 0 ? v : 0) : v
            ch += 1
        }
    }
}

/// dx = k·(g − mean(g) − (x − μ)·istd·mean(g·x̂)), with k, mean(g), mean(g·x̂) at `coefficients` [3][C]
private func inputGradientPixels(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mask: ReLUMask?,
                                 into dx: UnsafeMutablePointer<Float>, _ pixels: Int, _ c: Int,
                                 mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                 coefficients: UnsafePointer<Float>) {
    let k = coefficients, meanDy = coefficients + c, meanDyXh = coefficients + 2 * c
    for p in 0..<pixels {
        let o = p * c
        var ch = 0
        while ch + 8 <= c {
            let centred = vload(x + o + ch) - vload(mean + ch)
            let g = mask?.gradient(vload(dy + o + ch), centred: centred, channel: ch) ?? vload(dy + o + ch)
            let xh = centred * vload(invStd + ch) * vload(meanDyXh + ch)
            vstore(vload(k + ch) * (g - vload(meanDy + ch) - xh), dx + o + ch)
            ch += 8
        }
        while ch < c {
            let centred = x[o + ch] - mean[ch]
            let g = mask?.gradient(dy[o + ch], centred: centred, channel: ch) ?? dy[o + ch]
            dx[o + ch] = k[ch] * (g - meanDy[ch] - centred * invStd[ch] * meanDyXh[ch])
            ch += 1
        }
    }
}
