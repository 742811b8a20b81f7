import LRTensor

/// The channel-last direct path of a `Conv2d`: each sample is packed into a zero-padded channel-last image that
/// stays in the L2 cache (transposed from NCHW, or copied row by row from a channel-last tensor) and convolved by
/// `ChannelLastConvolution`'s register kernels. For NCHW tensors the result is transposed back; a channel-last
/// layer whose output rows the kernels store compactly (`Geometry.compactOutput`) has it written straight into its
/// output, and reads its output gradient in place for the weight gradient. The batch is split into chunks of
/// samples for the layer threads (`LayerThreads`); each chunk writes only its own samples and sums its own weight
/// gradient, added up in chunk order.
extension Conv2d {
    /// A stride-1 'same' convolution's input gradient is a convolution again (the kernel flipped), cheaper than
    /// the scatter every other geometry needs.
    private var flipsForInputGradient: Bool { stride == 1 && kernel == 2 * padding + 1 }

    /// An unpadded channel-last input is the image the kernels read (a 1×1 shortcut): no copy, when every pixel
    /// they may touch lies inside the sample.
    private func readsInputInPlace(_ g: ChannelLastConvolution.Geometry) -> Bool {
        layout == .channelsLast && g.padding == 0 && g.paddedPixels <= g.h * g.w
    }

    private func prepare(_ scratch: ChannelLastScratch, _ x: Tensor) -> (ChannelLastConvolution.Geometry, Int, Int) {
        let (h, w) = layout == .channelsLast ? (x.shape[1], x.shape[2]) : (x.shape[2], x.shape[3])
        let g = ChannelLastConvolution.Geometry(h: h, w: w, kernel: kernel, padding: padding, stride: stride,
                                                compactRows: layout == .channelsLast)
        let chunks = LayerThreads.chunks(samples: x.shape[0])
        let workers = LayerThreads.workers(for: chunks)
        scratch.prepare(workers: workers, chunks: chunks, geometry: g, inChannels: inChannels, outChannels: outChannels)
        return (g, workers, chunks)
    }

    /// `moments`, when given, receives each sample's output moments as the sample is written.
    func channelLastForward(_ x: Tensor, into output: Tensor, scratch: ChannelLastScratch, moments: SampleMoments? = nil) {
        let (g, workers, chunks) = prepare(scratch, x)
        moments?.prepare(samples: x.shape[0], channels: outChannels)
        let n = x.shape[0], cin = inChannels, cout = outChannels, taps = kernel * kernel
        // [Cout, Cin, K, K] → [K·K][Cin][Cout]
        weight.value.withReadPointer { pw in
            let wf = scratch.forwardKernel
            for co in 0..<cout {
                for ci in 0..<cin {
                    for t in 0..<taps { wf[(t * cin + ci) * cout + co] = pw[(co * cin + ci) * taps + t] }
                }
            }
        }
        let inPlane = cin * g.h * g.w, outPlane = cout * g.ho * g.wo
        let inPlaceOutput = layout == .channelsLast && g.compactOutput
        let inPlaceInput = readsInputInPlace(g)
        withOptionalReadPointer(bias?.value) { pb in
            x.withReadPointer { px in
                output.withPointer { py in
                    nonisolated(unsafe) let (px, py, pb) = (px, py, pb)
                    LayerThreads.forEachChunk(chunks, workers: workers) { worker, chunk in
                        let xp = scratch.paddedInput[worker], yq = scratch.product[worker]
                        for s in LayerThreads.samples(ofChunk: chunk, batch: n) {
                            let input = inPlaceInput ? px + s * inPlane : UnsafePointer(xp)
                            if !inPlaceInput {
                                ChannelLastConvolution.pack(px + s * inPlane, from: layout, channels: cin, h: g.h, w: g.w,
                                                            rowWidth: g.paddedWidth, into: xp + g.interiorOffset * cin)
                            }
                            let inPlace = inPlaceOutput && pb == nil
                            ChannelLastConvolution.convolve(input: input, inChannels: cin, walk: g.walk,
                                                            paddedWidth: g.paddedWidth, kernel: g.kernel,
                                                            weights: scratch.forwardKernel, outChannels: cout,
                                                            output: inPlace ? py + s * outPlane : yq)
                            if !inPlace {
                                ChannelLastConvolution.unpack(yq, to: layout, channels: cout, h: g.ho, w: g.wo,
                                                              rowWidth: g.outputWidth, bias: pb, into: py + s * outPlane)
                            }
                            moments?.record(sample: s, py + s * outPlane, pixels: g.ho * g.wo)
                        }
                    }
                }
            }
        }
        moments?.source = ObjectIdentifier(output)
    }

    /// dW and db accumulate into the parameters' gradients; dx is written into `gradInput` when given.
    func channelLastBackward(_ x: Tensor, gradOutput: Tensor, into gradInput: Tensor?, scratch: ChannelLastScratch) {
        let (g, workers, chunks) = prepare(scratch, x)
        let n = x.shape[0], cin = inChannels, cout = outChannels, taps = kernel * kernel
        let flips = flipsForInputGradient
        if gradInput != nil {
            // [Cout, Cin, K, K] → [K·K][Cout][Cin]; flipped: dx = Σ_t dy[q + shift(t)] · W[K·K − 1 − t]ᵀ
            weight.value.withReadPointer { pw in
                let wb = scratch.backwardKernel
                for co in 0..<cout {
                    for ci in 0..<cin {
                        for t in 0..<taps {
                            wb[(t * cout + co) * cin + ci] = pw[(co * cin + ci) * taps + (flips ? taps - 1 - t : t)]
                        }
                    }
                }
            }
        }
        // Where the output gradient's pixel q sits: inside a padded image for the flipped convolution, else at q.
        let gradientOffset = flips ? g.interiorOffset * cout : 0
        let gradientRow = flips ? g.paddedWidth : g.outputWidth
        let inPlane = cin * g.h * g.w, outPlane = cout * g.ho * g.wo, hasBias = bias != nil
        // A channel-last output gradient stored as the kernels walk it is read in place for the weight gradient
        // (the flipped convolution still needs it padded); the input gradient of a compact walk is written in place.
        let inPlace = layout == .channelsLast && g.compactOutput
        let packsGradient = !inPlace || (flips && gradInput != nil)
        let inPlaceInput = readsInputInPlace(g)
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                withOptionalPointer(gradInput) { pdx in
                    nonisolated(unsafe) let (px, pdy, pdx) = (px, pdy, pdx)
                    LayerThreads.forEachChunk(chunks, workers: workers) { worker, chunk in
                        let xp = scratch.paddedInput[worker], gp = scratch.outputGradient[worker]
                        let dw = scratch.weightGradient[chunk], db = scratch.biasGradient[chunk]
                        dw.update(repeating: 0, count: scratch.sizes.weights)
                        db.update(repeating: 0, count: scratch.sizes.bias)
                        for s in LayerThreads.samples(ofChunk: chunk, batch: n) {
                            let dy = pdy + s * outPlane
                            let input = inPlaceInput ? px + s * inPlane : UnsafePointer(xp)
                            if !inPlaceInput {
                                ChannelLastConvolution.pack(px + s * inPlane, from: layout, channels: cin, h: g.h, w: g.w,
                                                            rowWidth: g.paddedWidth, into: xp + g.interiorOffset * cin)
                            }
                            if packsGradient {
                                ChannelLastConvolution.pack(dy, from: layout, channels: cout, h: g.ho, w: g.wo,
                                                            rowWidth: gradientRow, into: gp + gradientOffset)
                            }
                            if hasBias {
                                if layout == .channelsLast {
                                    for q in 0..<g.ho * g.wo {
                                        for co in 0..<cout { db[co] += dy[q * cout + co] }
                                    }
                                } else {
                                    for co in 0..<cout { db[co] += laneSum(dy + co * g.ho * g.wo, g.ho * g.wo) }
                                }
                            }
                            ChannelLastConvolution.accumulateWeightGradient(
                                input: input, inChannels: cin, walk: g.walk, paddedWidth: g.paddedWidth,
                                kernel: g.kernel, grad: inPlace ? dy : UnsafePointer(gp + gradientOffset), outChannels: cout, into: dw)
                            guard let out = pdx else { continue }
                            if flips {
                                // The same geometry as forward's: dx [H, W] is walked as the output was.
                                let dxq = inPlace ? out + s * inPlane : scratch.product[worker]
                                ChannelLastConvolution.convolve(input: gp, inChannels: cout, walk: g.walk,
                                                                paddedWidth: g.paddedWidth, kernel: g.kernel,
                                                                weights: scratch.backwardKernel, outChannels: cin,
                                                                output: dxq)
                                if inPlace { continue }
                                ChannelLastConvolution.unpack(dxq, to: layout, channels: cin, h: g.h, w: g.w,
                                                              rowWidth: g.outputWidth, bias: nil, into: out + s * inPlane)
                            } else {
                                // Unpadded, the scattered image is the sample's input gradient as it is.
                                let dxp = inPlaceInput ? out + s * inPlane : scratch.inputGradient[worker]
                                dxp.update(repeating: 0, count: inPlaceInput ? inPlane : scratch.sizes.input)
                                ChannelLastConvolution.scatter(grad: inPlace ? dy : UnsafePointer(gp), outChannels: cout,
                                                               weights: scratch.backwardKernel, walk: g.walk,
                                                               paddedWidth: g.paddedWidth, kernel: g.kernel,
                                                               inChannels: cin, into: dxp)
                                if inPlaceInput { continue }
                                ChannelLastConvolution.unpack(dxp + g.interiorOffset * cin, to: layout, channels: cin, h: g.h, w: g.w,
                                                              rowWidth: g.paddedWidth, bias: nil, into: out + s * inPlane)
                            }
                        }
                    }
                }
            }
        }
        // Partial sums in chunk order, [K·K][Cin][Cout] → [Cout, Cin, K, K].
        weight.grad.withPointer { pdw in
            for chunk in 0..<chunks {
                let dw = scratch.weightGradient[chunk]
                for co in 0..<cout {
                    for ci in 0..<cin {
                        for t in 0..<taps { pdw[(co * cin + ci) * taps + t] += dw[(t * cin + ci) * cout + co] }
                    }
                }
            }
        }
        if let bias {
            bias.grad.withPointer { pdb in
                for chunk in 0..<chunks {
                    for co in 0..<cout { pdb[co] += scratch.biasGradient[chunk][co] }
                }
            }
        }
    }
}

@inline(__always)
private func withOptionalReadPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withReadPointer { body($0) }
}

@inline(__always)
private func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withPointer { body($0) }
}
