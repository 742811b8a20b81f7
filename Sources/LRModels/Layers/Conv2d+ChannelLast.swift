import Dispatch
import LRTensor

/// The channel-last direct path of a stride-1 'same' `Conv2d`: each sample is packed into a zero-padded
/// channel-last image that stays in the L2 cache, convolved by `ChannelLastConvolution`'s register kernels, and
/// unpacked into the NCHW tensors the other layers use. The batch is split into one contiguous run of samples per
/// worker (the BLAS thread count: OpenBLAS is idle meanwhile); each worker sums its own weight gradient, added up in
/// worker order, so a run with the same thread count is the same bit for bit.
extension Conv2d {
    /// Pointers the workers share. Each writes only its own samples' rows and its own partial sums.
    private struct Shared: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let out: UnsafeMutablePointer<Float>?
        let gradOutput: UnsafePointer<Float>?
        let bias: UnsafePointer<Float>?
    }

    private func workerCount(samples n: Int) -> Int { max(1, min(n, BLAS.threads)) }

    /// Runs `body(worker, firstSample, endSample)` for each worker's contiguous run of the `n` samples.
    private func forEachWorker(_ workers: Int, samples n: Int, _ body: @Sendable (Int, Int, Int) -> Void) {
        if workers == 1 { body(0, 0, n); return }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            body(worker, worker * n / workers, (worker + 1) * n / workers)
        }
    }

    func channelLastForward(_ x: Tensor, into output: Tensor, scratch: ChannelLastScratch) {
        let n = x.shape[0], h = x.shape[2], w = x.shape[3], p = padding, k = kernel
        let cin = inChannels, cout = outChannels, wp = w + 2 * p
        let workers = workerCount(samples: n)
        scratch.prepare(workers: workers, h: h, w: w, inChannels: cin, outChannels: cout, kernel: k, paddedWidth: wp)
        let pixels = ChannelLastConvolution.outputPixels(rows: h, paddedWidth: wp)
        // [Cout, Cin, K, K] → [K·K][Cin][Cout]
        weight.value.withReadPointer { pw in
            let wf = scratch.forwardKernel
            for co in 0..<cout {
                for ci in 0..<cin {
                    for t in 0..<(k * k) { wf[(t * cin + ci) * cout + co] = pw[(co * cin + ci) * k * k + t] }
                }
            }
        }
        let interior = (p * wp + p) * cin
        withOptionalReadPointer(bias?.value) { pb in
            x.withReadPointer { px in
                output.withPointer { py in
                    let shared = Shared(x: px, out: py, gradOutput: nil, bias: pb)
                    forEachWorker(workers, samples: n) { worker, first, end in
                        let xp = scratch.paddedInput[worker], yq = scratch.product[worker]
                        for s in first..<end {
                            ChannelLastConvolution.pack(shared.x + s * cin * h * w, channels: cin, h: h, w: w,
                                                        paddedWidth: wp, into: xp + interior)
                            ChannelLastConvolution.convolve(input: xp, inChannels: cin, paddedWidth: wp, kernel: k,
                                                            weights: scratch.forwardKernel, outChannels: cout,
                                                            output: yq, pixels: pixels)
                            ChannelLastConvolution.unpack(yq, channels: cout, h: h, w: w, paddedWidth: wp,
                                                          bias: shared.bias, into: shared.out! + s * cout * h * w)
                        }
                    }
                }
            }
        }
    }

    /// dW and db accumulate into the parameters' gradients; dx is written into `gradInput` when given.
    func channelLastBackward(_ x: Tensor, gradOutput: Tensor, into gradInput: Tensor?, scratch: ChannelLastScratch) {
        let n = x.shape[0], h = x.shape[2], w = x.shape[3], p = padding, k = kernel
        let cin = inChannels, cout = outChannels, wp = w + 2 * p, taps = k * k
        let workers = workerCount(samples: n)
        scratch.prepare(workers: workers, h: h, w: w, inChannels: cin, outChannels: cout, kernel: k, paddedWidth: wp)
        scratch.clearPartialGradients()
        let pixels = ChannelLastConvolution.outputPixels(rows: h, paddedWidth: wp)
        let needsInput = gradInput != nil
        if needsInput {
            // [Cout, Cin, K, K] → [K·K][Cout][Cin], the taps reversed: dx = Σ dy[q + shift(t)] · W[K·K − 1 − t]ᵀ
            weight.value.withReadPointer { pw in
                let wb = scratch.backwardKernel
                for co in 0..<cout {
                    for ci in 0..<cin {
                        for t in 0..<taps { wb[(t * cout + co) * cin + ci] = pw[(co * cin + ci) * taps + taps - 1 - t] }
                    }
                }
            }
        }
        let inputInterior = (p * wp + p) * cin, gradientInterior = (p * wp + p) * cout
        let hasBias = bias != nil
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                withOptionalPointer(gradInput) { pdx in
                    let shared = Shared(x: px, out: pdx, gradOutput: pdy, bias: nil)
                    forEachWorker(workers, samples: n) { worker, first, end in
                        let xp = scratch.paddedInput[worker], gp = scratch.paddedGradient[worker]
                        let dxq = scratch.product[worker], dw = scratch.weightGradient[worker]
                        let db = scratch.biasGradient[worker]
                        for s in first..<end {
                            let dy = shared.gradOutput! + s * cout * h * w
                            ChannelLastConvolution.pack(shared.x + s * cin * h * w, channels: cin, h: h, w: w,
                                                        paddedWidth: wp, into: xp + inputInterior)
                            ChannelLastConvolution.pack(dy, channels: cout, h: h, w: w, paddedWidth: wp,
                                                        into: gp + gradientInterior)
                            if hasBias {
                                for co in 0..<cout { db[co] += laneSum(dy + co * h * w, h * w) }
                            }
                            ChannelLastConvolution.accumulateWeightGradient(
                                input: xp, inChannels: cin, paddedWidth: wp, kernel: k, grad: gp + gradientInterior,
                                outChannels: cout, pixels: pixels, into: dw)
                            if let out = shared.out {
                                ChannelLastConvolution.convolve(input: gp, inChannels: cout, paddedWidth: wp, kernel: k,
                                                                weights: scratch.backwardKernel, outChannels: cin,
                                                                output: dxq, pixels: pixels)
                                ChannelLastConvolution.unpack(dxq, channels: cin, h: h, w: w, paddedWidth: wp,
                                                              bias: nil, into: out + s * cin * h * w)
                            }
                        }
                    }
                }
            }
        }
        // Partial sums in worker order, [K·K][Cin][Cout] → [Cout, Cin, K, K].
        weight.grad.withPointer { pdw in
            for worker in 0..<workers {
                let dw = scratch.weightGradient[worker]
                for co in 0..<cout {
                    for ci in 0..<cin {
                        for t in 0..<taps { pdw[(co * cin + ci) * taps + t] += dw[(t * cin + ci) * cout + co] }
                    }
                }
            }
        }
        if let bias {
            bias.grad.withPointer { pdb in
                for worker in 0..<workers {
                    for co in 0..<cout { pdb[co] += scratch.biasGradient[worker][co] }
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
