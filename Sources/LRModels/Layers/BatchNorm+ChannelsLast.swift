import LRTensor

/// The channel-last batch norm: [N, H, W, C] is [M, C] with M = N·H·W and a pixel's channels contiguous, so every
/// pass walks the pixels in memory order with the channels in vectors. Samples go to the layer threads in chunks
/// (`LayerThreads`); a chunk sums each sample in Float and its samples in Double, and the chunks' sums are added in
/// chunk order, so the statistics are the same for any thread count. The arithmetic per element is the
/// channels-first path's.
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
    private func reduceSamples(_ n: Int, into totals: UnsafeMutablePointer<Double>,
                               _ perSample: @Sendable (_ sample: Int, _ sums: UnsafeMutablePointer<Float>) -> Void) {
        let c = channels
        let chunks = LayerThreads.chunks(samples: n), workers = LayerThreads.workers(for: chunks)
        prepareChannelsLastScratch(chunks: chunks)
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
        }
        prepareChannelsLastScratch(chunks: LayerThreads.chunks(samples: n))
        channelTotals.withUnsafeMutableBufferPointer { totals in
        let totals = totals.baseAddress!
        x.withReadPointer { px in
            mean.withUnsafeMutableBufferPointer { mu in
                invStd.withUnsafeMutableBufferPointer { inv in
                    nonisolated(unsafe) let (px, mu, inv) = (px, mu.baseAddress!, inv.baseAddress!)
                    if training {
                        // Two passes, the mean and then the centred squares, as the channels-first path.
                        reduceSamples(n, into: totals) { s, acc in pixelSums(px + s * sample, pixels, c, into: acc) }
                        for ch in 0..<c { mu[ch] = Float(totals[ch] / Double(m)) }
                        reduceSamples(n, into: totals) { s, acc in
                            centredPixelSquares(px + s * sample, pixels, c, mean: mu, into: acc)
                        }
                        runningMean.withPointer { prm in
                            runningVar.withPointer { prv in
                                for ch in 0..<c {
                                    let variance = totals[ch] / Double(m)
                                    inv[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                                    let unbiased = variance * Double(m) / Double(m - 1)
                                    prm[ch] = (1 - momentum) * prm[ch] + momentum * mu[ch]
                                    prv[ch] = (1 - momentum) * prv[ch] + momentum * Float(unbiased)
                                }
                            }
                        }
                    } else {
                        runningMean.withReadPointer { prm in
                            runningVar.withReadPointer { prv in
                                for ch in 0..<c {
                                    mu[ch] = prm[ch]
                                    inv[ch] = 1 / (prv[ch] + eps).squareRoot()
                                }
                            }
                        }
                    }
                    output.withPointer { py in
                        weight.value.withReadPointer { pg in
                            bias.value.withReadPointer { pb in
                                nonisolated(unsafe) let (py, pg, pb) = (py, pg, pb)
                                let relu = fusedReLU, chunks = LayerThreads.chunks(samples: n)
                                LayerThreads.forEachChunk(chunks, workers: LayerThreads.workers(for: chunks)) { _, chunk in
                                    let range = LayerThreads.samples(ofChunk: chunk, batch: n)
                                    normalisePixels(px + range.lowerBound * sample, py + range.lowerBound * sample,
                                                    range.count * pixels, c, gamma: pg, beta: pb, mean: mu, invStd: inv,
                                                    relu: relu)
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

    func channelsLastBackward(_ x: Tensor, gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let n = x.shape[0], c = channels, pixels = x.shape[1] * x.shape[2], m = n * pixels, sample = pixels * c
        gradInput.ensureShape(like: x)
        let training = usedBatchStatistics, relu = fusedReLU
        prepareChannelsLastScratch(chunks: LayerThreads.chunks(samples: n))
        channelTotals.withUnsafeMutableBufferPointer { totals in
        let totals = totals.baseAddress!
        gradOutput.withReadPointer { pdy in
            x.withReadPointer { px in
                output.withReadPointer { py in
                    mean.withUnsafeBufferPointer { mu in
                        invStd.withUnsafeBufferPointer { inv in
                            nonisolated(unsafe) let (pdy, px, py, mu, inv) = (pdy, px, py, mu.baseAddress!, inv.baseAddress!)
                            reduceSamples(n, into: totals) { s, acc in
                                let o = s * sample
                                gradientPixelSums(pdy + o, px + o, relu ? py + o : nil, pixels, c, mean: mu, into: acc)
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
                            // Per channel: k = γ·istd, mean of g, mean of g·x̂, after the two passes' sums.
                            gradientCoefficients.withUnsafeMutableBufferPointer { buffer in
                                let coefficients = buffer.baseAddress!
                                weight.value.withReadPointer { pg in
                                    for ch in 0..<c {
                                        let sumDy = Float(totals[ch]), sumDyXh = Float(totals[c + ch]) * inv[ch]
                                        coefficients[ch] = pg[ch] * inv[ch]
                                        coefficients[c + ch] = training ? sumDy / Float(m) : 0
                                        coefficients[2 * c + ch] = training ? sumDyXh / Float(m) : 0
                                    }
                                }
                                gradInput.withPointer { pdx in
                                    nonisolated(unsafe) let (pdx, coefficients) = (pdx, UnsafePointer(coefficients))
                                    let chunks = LayerThreads.chunks(samples: n)
                                    LayerThreads.forEachChunk(chunks, workers: LayerThreads.workers(for: chunks)) { _, chunk in
                                        let range = LayerThreads.samples(ofChunk: chunk, batch: n)
                                        let o = range.lowerBound * sample
                                        inputGradientPixels(pdy + o, px + o, relu ? py + o : nil, into: pdx + o,
                                                            range.count * pixels, c, mean: mu, invStd: inv,
                                                            coefficients: coefficients)
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

/// acc[ch] += Σ_p g, acc[C + ch] += Σ_p g·(x − μ), g = dy (masked by y > 0 when `y` is given: a fused ReLU)
private func gradientPixelSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>?,
                               _ pixels: Int, _ c: Int, mean: UnsafePointer<Float>, into acc: UnsafeMutablePointer<Float>) {
    let zero = SIMD8<Float>()
    let accD = acc + c
    for p in 0..<pixels {
        let o = p * c
        var ch = 0
        while ch + 8 <= c {
            var g = vload(dy + o + ch)
            if let y { g = g.replacing(with: zero, where: vload(y + o + ch) .<= zero) }
            vstore(vload(acc + ch) + g, acc + ch)
            vstore(vload(accD + ch) + g * (vload(x + o + ch) - vload(mean + ch)), accD + ch)
            ch += 8
        }
        while ch < c {
            let g = y.map { $0[o + ch] > 0 ? dy[o + ch] : 0 } ?? dy[o + ch]
            acc[ch] += g
            accD[ch] += g * (x[o + ch] - mean[ch])
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
private func inputGradientPixels(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>?,
                                 into dx: UnsafeMutablePointer<Float>, _ pixels: Int, _ c: Int,
                                 mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>,
                                 coefficients: UnsafePointer<Float>) {
    let zero = SIMD8<Float>()
    let k = coefficients, meanDy = coefficients + c, meanDyXh = coefficients + 2 * c
    for p in 0..<pixels {
        let o = p * c
        var ch = 0
        while ch + 8 <= c {
            var g = vload(dy + o + ch)
            if let y { g = g.replacing(with: zero, where: vload(y + o + ch) .<= zero) }
            let xh = (vload(x + o + ch) - vload(mean + ch)) * vload(invStd + ch) * vload(meanDyXh + ch)
            vstore(vload(k + ch) * (g - vload(meanDy + ch) - xh), dx + o + ch)
            ch += 8
        }
        while ch < c {
            let g = y.map { $0[o + ch] > 0 ? dy[o + ch] : 0 } ?? dy[o + ch]
            dx[o + ch] = k[ch] * (g - meanDy[ch] - (x[o + ch] - mean[ch]) * invStd[ch] * meanDyXh[ch])
            ch += 1
        }
    }
}
