import LRTensor

/// im2col + sgemm for a channel-last `Conv2d` whose channel counts the direct kernels do not take (the convnet's
/// 1-channel stem). The columns are built as for NCHW (`im2col` reads the channel-last sample through its strides),
/// and the products are transposed so that they land in the [N, Ho, Wo, Cout] output as it is:
///
///     col: [Cin·K·K, S·Ho·Wo]   (the patches of a group of S samples side by side)
///     forward:   Y[S·Ho·Wo, Cout] = colᵀ · Wᵀ + b
///     backward:  dW += dYᵀ · colᵀ,   db += Σ_rows dY,   dx = col2im(Wᵀ · dYᵀ)
extension Conv2d {
    func columnsForwardChannelsLast(_ x: Tensor) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = output.shape[1], wo = output.shape[2], hw = ho * wo
        let kk = inChannels * kernel * kernel, cout = outChannels, inSample = h * w * inChannels
        let group = groupSize(samples: n, hw: hw)
        workspace.reserve(workspace.columns, kk * group * hw)
        x.withReadPointer { px in
            weight.value.withReadPointer { pw in
                output.withPointer { py in
                    workspace.columns.withPointer { pc in
                        var first = 0
                        while first < n {
                            let s = min(group, n - first), rows = s * hw
                            for j in 0..<s {
                                im2col(px + (first + j) * inSample, h: h, w: w, ho: ho, wo: wo, into: pc + j * hw,
                                       rowStride: rows)
                            }
                            let y = py + first * hw * cout
                            var beta: Float = 0
                            if let bias {
                                bias.value.withReadPointer { pb in
                                    for r in 0..<rows { (y + r * cout).update(from: pb, count: cout) }
                                }
                                beta = 1
                            }
                            BLAS.gemm(transA: true, transB: true, m: rows, n: cout, k: kk, a: pc, b: pw, beta: beta, c: y)
                            first += s
                        }
                    }
                }
            }
        }
    }

    func columnsBackwardChannelsLast(_ x: Tensor, gradOutput: Tensor, needsInputGradient: Bool) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = output.shape[1], wo = output.shape[2], hw = ho * wo
        let kk = inChannels * kernel * kernel, cout = outChannels, inSample = h * w * inChannels
        let group = groupSize(samples: n, hw: hw)
        workspace.reserve(workspace.columns, kk * group * hw)
        workspace.reserve(workspace.columnGradients, needsInputGradient ? kk * group * hw : 1)
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                weight.value.withReadPointer { pw in
                    weight.grad.withPointer { pdw in
                        workspace.columns.withPointer { pc in
                            workspace.columnGradients.withPointer { pdc in
                                gradInput.withPointer { pdx in
                                    var first = 0
                                    while first < n {
                                        let s = min(group, n - first), rows = s * hw
                                        for j in 0..<s {
                                            im2col(px + (first + j) * inSample, h: h, w: w, ho: ho, wo: wo,
                                                   into: pc + j * hw, rowStride: rows)
                                        }
                                        let dY = pdy + first * hw * cout
                                        // dW[Cout, kk] += dYᵀ[Cout, rows] · colᵀ[rows, kk]
                                        BLAS.gemm(transA: true, transB: true, m: cout, n: kk, k: rows, a: dY, b: pc,
                                                  beta: 1, c: pdw)
                                        if let bias {
                                            bias.grad.withPointer { pdb in
                                                for r in 0..<rows {
                                                    for co in 0..<cout { pdb[co] += dY[r * cout + co] }
                                                }
                                            }
                                        }
                                        if needsInputGradient {
                                            // dcol[kk, rows] = Wᵀ[kk, Cout] · dYᵀ[Cout, rows]
                                            BLAS.gemm(transA: true, transB: true, m: kk, n: rows, k: cout, a: pw, b: dY, c: pdc)
                                            for j in 0..<s {
                                                col2im(pdc + j * hw, rowStride: rows, h: h, w: w, ho: ho, wo: wo,
                                                       into: pdx + (first + j) * inSample)
                                            }
                                        }
                                        first += s
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
