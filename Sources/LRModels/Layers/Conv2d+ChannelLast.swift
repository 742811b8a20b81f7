import LRTensor

/// The channel-last direct path of a `Conv2d`: each sample is packed into a zero-padded channel-last image that
/// stays in the L2 cache, convolved by `ChannelLastConvolution`'s register kernels, and unpacked into the NCHW
/// tensors the other layers use. The batch is split into chunks of samples for the layer threads (`LayerThreads`);
/// each chunk writes only its own samples and sums its own weight gradient, added up in chunk order.
extension Conv2d {
    /// A stride-1 'same' convolution's input gradient is a convolution again (the kernel flipped), cheaper than
    /// the scatter every other geometry needs.
    private var flipsForInputGradient: Bool { stride == 1 && kernel == 2 * padding + 1 }

    private func prepare(_ scratch: ChannelLastScratch, _ x: Tensor) -> (ChannelLastConvolution.Geometry, Int, Int) {
        let g = ChannelLastConvolution.Geometry(h: x.shape[2], w: x.shape[3], kernel: kernel, padding: padding,
                                                stride: stride)
        let chunks = LayerThreads.chunks(samples: x.shape[0])
        let workers = LayerThreads.workers(for: chunks)
        scratch.prepare(workers: workers, chunks: chunks, geometry: g, inChannels: inChannels, outChannels: outChannels)
        return (g, workers, chunks)
    }

    func channelLastForward(_ x: Tensor, into output: Tensor, scratch: ChannelLastScratch) {
        let (g, workers, chunks) = prepare(scratch, x)
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
        withOptionalReadPointer(bias?.value) { pb in
            x.withReadPointer { px in
                output.withPointer { py in
                    nonisolated(unsafe) let (px, py, pb) = (px, py, pb)
                    LayerThreads.forEachChunk(chunks, workers: workers) { worker, chunk in
                        let xp = scratch.paddedInput[worker], yq = scratch.product[worker]
                        for s in LayerThreads.samples(ofChunk: chunk, batch: n) {
                            ChannelLastConvolution.pack(px + s * inPlane, channels: cin, h: g.h, w: g.w,
                                                        rowWidth: g.paddedWidth, into: xp + g.interiorOffset * cin)
                            ChannelLastConvolution.convolve(input: xp, inChannels: cin, walk: g.walk,
                                                            paddedWidth: g.paddedWidth, kernel: g.kernel,
                                                            weights: scratch.forwardKernel, outChannels: cout,
                                                            output: yq)
                            ChannelLastConvolution.unpack(yq, channels: cout, h: g.ho, w: g.wo, rowWidth: g.outputWidth,
                                                          bias: pb, into: py + s * outPlane)
                        }
                    }
                }
            }
        }
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
                            ChannelLastConvolution.pack(px + s * inPlane, channels: cin, h: g.h, w: g.w,
                                                        rowWidth: g.paddedWidth, into: xp + g.interiorOffset * cin)
                            ChannelLastConvolution.pack(dy, channels: cout, h: g.ho, w: g.wo, rowWidth: gradientRow,
                                                        into: gp + gradientOffset)
                            if hasBias {
                                for co in 0..<cout { db[co] += laneSum(dy + co * g.ho * g.wo, g.ho * g.wo) }
                            }
                            ChannelLastConvolution.accumulateWeightGradient(
                                input: xp, inChannels: cin, walk: g.walk, paddedWidth: g.paddedWidth,
                                kernel: g.kernel, grad: gp + gradientOffset, outChannels: cout, into: dw)
                            guard let out = pdx else { continue }
                            if flips {
                                let dxq = scratch.product[worker]
                                ChannelLastConvolution.convolve(input: gp, inChannels: cout, walk: g.walk,
                                                                paddedWidth: g.paddedWidth, kernel: g.kernel,
                                                                weights: scratch.backwardKernel, outChannels: cin,
                                                                output: dxq)
                                ChannelLastConvolution.unpack(dxq, channels: cin, h: g.h, w: g.w, rowWidth: g.paddedWidth,
                                                              bias: nil, into: out + s * inPlane)
                            } else {
                                let dxp = scratch.inputGradient[worker]
                                dxp.update(repeating: 0, count: scratch.sizes.input)
                                ChannelLastConvolution.scatter(grad: gp, outChannels: cout, weights: scratch.backwardKernel,
                                                               walk: g.walk, paddedWidth: g.paddedWidth,
                                                               kernel: g.kernel, inChannels: cin, into: dxp)
                                ChannelLastConvolution.unpack(dxp + g.interiorOffset * cin, channels: cin, h: g.h, w: g.w,
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
