import LRTensor

/// Scratch memory the convolutions of one model share: layers run one at a time, so one set of buffers serves them
/// all, sized once for the largest (no allocation in a steady-state step).
public final class ConvWorkspace: @unchecked Sendable {
    /// Patches of a group of samples, [Cin·K·K, S·Ho·Wo], and their gradient.
    let columns = Tensor(shape: [0])
    let columnGradients = Tensor(shape: [0])
    /// An output or output gradient of a group of samples with the channel outermost, [Cout, S·Ho·Wo].
    let channelMajor = Tensor(shape: [0])
    /// Floats of patches per product: a group of samples' columns (and sgemm's packed copy of them) stays within
    /// a core's 2 MB L2 cache, so im2col's writes are still cached when sgemm reads them. The whole batch's
    /// columns (58 MB for a 16-channel 3×3 convolution of 128 images of 28×28) go through memory three times per
    /// step: measured here, 4 MB groups cost 245 ms of CPU per convnet step against 188 ms for one sample at a time.
    public let columnBudget: Int

    public init(columnBudget: Int = 1 << 17) {
        precondition(columnBudget > 0, "ConvWorkspace: the column budget must be positive")
        self.columnBudget = columnBudget
    }

    @inline(__always)
    func reserve(_ tensor: Tensor, _ count: Int) {
        if tensor.count < count { tensor.resize([count]) }
    }
}

/// How a `Conv2d` computes.
public enum ConvolutionAlgorithm: Sendable {
    /// The channel-last direct kernels (`ChannelLastConvolution`) where they apply (output channels a multiple of
    /// 16, and input channels too unless the activations are channel-last), im2col + sgemm elsewhere.
    case automatic
    /// im2col + sgemm always (the reference the direct kernels are tested against).
    case im2col
}

/// A 2-D convolution over NCHW or channel-last tensors (`layout`; PyTorch's `nn.Conv2d`, groups = 1,
/// dilation = 1). Convolutions with channel counts in multiples of 16 (channel-last: output channels) run the
/// channel-last direct kernels, samples split across the BLAS thread count (`Conv2d+ChannelLast.swift`); the others
/// by im2col over groups of samples and one sgemm per group (the whole batch when its patches fit the workspace's
/// budget). As for NCHW:
///
///     x:   [N, Cin, H, W]
///     W:   [Cout, Cin, K, K]        b: [Cout] (optional)
///     y:   [N, Cout, Ho, Wo]        Ho = (H + 2·pad − K)/stride + 1, Wo likewise
///     col: [Cin·K·K, S·Ho·Wo]       (the patches of S samples side by side; rebuilt in backward, not kept)
///     Y:   [Cout, S·Ho·Wo]          (the group's output, channel-major; copied into y's NCHW planes)
///
///     forward:   Y = W · col + b
///     backward:  dW += dY · colᵀ,   db += Σ dY,   dx = col2im(Wᵀ · dY)
public final class Conv2d: Layer, @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    public let workspace: ConvWorkspace
    public let algorithm: ConvolutionAlgorithm
    /// The activations' layout: [N, C, H, W] in and out, or [N, H, W, C] (`Conv2d+ChannelsLastColumns.swift` for
    /// im2col in that layout).
    public let layout: ActivationLayout
    /// The channel-last path's buffers; nil when this convolution runs by im2col.
    let channelLast: ChannelLastScratch?
    /// Whether this convolution runs the channel-last direct kernels (else im2col + sgemm).
    public var channelLastPath: Bool { channelLast != nil }

    let output = Tensor(shape: [0])
    let gradInput = Tensor(shape: [0])
    /// Where a training forward records its output's per-sample moments for the batch norm it feeds
    /// (`BatchNorm.takeStatistics(from:)`; channel-last direct path).
    var outputMoments: SampleMoments?
    private var input: Tensor?

    /// Parameters are `<name>.weight` (and `<name>.bias` when `bias`), drawn from `rng` as PyTorch does.
    /// Convolutions of one model share a `workspace`.
    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, workspace: ConvWorkspace = ConvWorkspace(), algorithm: ConvolutionAlgorithm = .automatic,
                layout: ActivationLayout = .channelsFirst, rng: inout Xoshiro256) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2d \(name): invalid geometry")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.workspace = workspace
        self.algorithm = algorithm
        self.layout = layout
        // Channel-last, any input channel count goes direct (the input gradient of one that is not a multiple of
        // the block falls back to im2col: the stem never asks for it).
        let block = ChannelLastConvolution.channelBlock
        let direct = algorithm == .automatic && outChannels % block == 0
            && (inChannels % block == 0 || layout == .channelsLast)
        channelLast = direct ? ChannelLastScratch(kernelFloats: kernel * kernel * inChannels * outChannels) : nil
        (weight, self.bias) = defaultInitialisedParameters(
            name: name, weightShape: [outChannels, inChannels, kernel, kernel], fanIn: inChannels * kernel * kernel,
            bias: bias, rng: &rng)
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public var buffers: [NamedTensor] { [] }

    /// The output spatial size for an input of `h`×`w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    /// Samples per sgemm: as many as the workspace's column budget holds, at least one.
    func groupSize(samples n: Int, hw: Int) -> Int {
        max(1, min(n, workspace.columnBudget / max(1, inChannels * kernel * kernel * hw)))
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if layout == .channelsLast {
            precondition(x.rank == 4 && x.shape[3] == inChannels, "Conv2d: input \(x.shape), expected [N, H, W, \(inChannels)]")
            input = x
            let (ho, wo) = outputSize(h: x.shape[1], w: x.shape[2])
            precondition(ho > 0 && wo > 0, "Conv2d: input \(x.shape[1])x\(x.shape[2]) is smaller than the kernel")
            output.ensureShape(x.shape[0], ho, wo, outChannels)
            outputMoments?.source = nil
            if let channelLast {
                channelLastForward(x, into: output, scratch: channelLast, moments: training ? outputMoments : nil)
            } else {
                columnsForwardChannelsLast(x)
            }
            return output
        }
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d: input \(x.shape), expected [N, \(inChannels), H, W]")
        input = x
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let (ho, wo) = outputSize(h: h, w: w)
        precondition(ho > 0 && wo > 0, "Conv2d: input \(h)x\(w) is smaller than the kernel")
        let kk = inChannels * kernel * kernel, hw = ho * wo, inPlane = inChannels * h * w, cout = outChannels
        output.ensureShape(n, cout, ho, wo)
        if let channelLast {
            channelLastForward(x, into: output, scratch: channelLast)
            return output
        }
        let group = groupSize(samples: n, hw: hw)
        workspace.reserve(workspace.columns, kk * group * hw)
        workspace.reserve(workspace.channelMajor, cout * group * hw)
        x.withReadPointer { px in
            weight.value.withReadPointer { pw in
                output.withPointer { py in
                    workspace.columns.withPointer { pc in
                        workspace.channelMajor.withPointer { pm in
                            var first = 0
                            while first < n {
                                let s = min(group, n - first), row = s * hw
                                for j in 0..<s {
                                    im2col(px + (first + j) * inPlane, h: h, w: w, ho: ho, wo: wo, into: pc + j * hw, rowStride: row)
                                }
                                if s == 1 {
                                    // One sample's [Cout, HW] is its NCHW plane: no copy.
                                    let ys = py + first * cout * hw
                                    var beta: Float = 0
                                    if let bias {
                                        bias.value.withReadPointer { pb in
                                            for c in 0..<cout { (ys + c * hw).update(repeating: pb[c], count: hw) }
                                        }
                                        beta = 1
                                    }
                                    BLAS.gemm(m: cout, n: hw, k: kk, a: pw, b: pc, beta: beta, c: ys)
                                    first += 1
                                    continue
                                }
                                BLAS.gemm(m: cout, n: row, k: kk, a: pw, b: pc, c: pm)
                                // [Cout, S·HW] → the S samples' [Cout, HW] planes, adding the bias on the way.
                                for c in 0..<cout {
                                    let add: Float = bias.map { $0.value.storage[c] } ?? 0
                                    for j in 0..<s {
                                        let src = pm + c * row + j * hw, dst = py + ((first + j) * cout + c) * hw
                                        for i in 0..<hw { dst[i] = src[i] + add }
                                    }
                                }
                                first += s
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        if layout == .channelsLast {
            if needsInputGradient { gradInput.ensureShape(like: x) } else if gradInput.count == 0 { gradInput.resize([1]) }
            if let channelLast, !needsInputGradient || inChannels % ChannelLastConvolution.channelBlock == 0 {
                channelLastBackward(x, gradOutput: gradOutput, into: needsInputGradient ? gradInput : nil, scratch: channelLast)
            } else {
                columnsBackwardChannelsLast(x, gradOutput: gradOutput, needsInputGradient: needsInputGradient)
            }
            return needsInputGradient ? gradInput : gradOutput
        }
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let ho = output.shape[2], wo = output.shape[3], cout = outChannels
        let kk = inChannels * kernel * kernel, hw = ho * wo, inPlane = inChannels * h * w
        if needsInputGradient { gradInput.ensureShape(like: x) } else if gradInput.count == 0 { gradInput.resize([1]) }
        if let channelLast {
            channelLastBackward(x, gradOutput: gradOutput, into: needsInputGradient ? gradInput : nil, scratch: channelLast)
            return needsInputGradient ? gradInput : gradOutput
        }
        let group = groupSize(samples: n, hw: hw)
        workspace.reserve(workspace.columns, kk * group * hw)
        workspace.reserve(workspace.channelMajor, cout * group * hw)
        workspace.reserve(workspace.columnGradients, needsInputGradient ? kk * group * hw : 1)
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                weight.value.withReadPointer { pw in
                    weight.grad.withPointer { pdw in
                        workspace.columns.withPointer { pc in
                            workspace.channelMajor.withPointer { pm in
                                workspace.columnGradients.withPointer { pdc in
                                    gradInput.withPointer { pdx in
                                        var first = 0
                                        while first < n {
                                            let s = min(group, n - first), row = s * hw
                                            for j in 0..<s {
                                                im2col(px + (first + j) * inPlane, h: h, w: w, ho: ho, wo: wo, into: pc + j * hw, rowStride: row)
                                            }
                                            // The group's dY channel-major; one sample's plane is already so.
                                            let dY: UnsafePointer<Float>
                                            if s == 1 {
                                                dY = pdy + first * cout * hw
                                            } else {
                                                for c in 0..<cout {
                                                    for j in 0..<s {
                                                        (pm + c * row + j * hw).update(from: pdy + ((first + j) * cout + c) * hw, count: hw)
                                                    }
                                                }
                                                dY = UnsafePointer(pm)
                                            }
                                            // dW[Cout, kk] += dY[Cout, S·HW] · colᵀ[S·HW, kk]
                                            BLAS.gemm(transB: true, m: cout, n: kk, k: row, a: dY, b: pc, beta: 1, c: pdw)
                                            if let bias {
                                                bias.grad.withPointer { pdb in
                                                    for c in 0..<cout {
                                                        let r = dY + c * row
                                                        var acc: Float = 0
                                                        for i in 0..<row { acc += r[i] }
                                                        pdb[c] += acc
                                                    }
                                                }
                                            }
                                            if needsInputGradient {
                                                // dcol[kk, S·HW] = Wᵀ[kk, Cout] · dY[Cout, S·HW]
                                                BLAS.gemm(transA: true, m: kk, n: row, k: cout, a: pw, b: dY, c: pdc)
                                                for j in 0..<s {
                                                    col2im(pdc + j * hw, rowStride: row, h: h, w: w, ho: ho, wo: wo, into: pdx + (first + j) * inPlane)
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
        return needsInputGradient ? gradInput : gradOutput
    }

    /// The output columns `ow` for which input column `ow·stride + kw − pad` lies inside [0, w).
    @inline(__always)
    func validRange(kOffset: Int, size: Int, outSize: Int) -> (Int, Int) {
        // ow·s + k − p ≥ 0  ⇔ ow ≥ ceil((p − k)/s);   ow·s + k − p ≤ size − 1  ⇔ ow ≤ floor((size − 1 + p − k)/s)
        let lowNum = padding - kOffset
        let lo = lowNum <= 0 ? 0 : (lowNum + stride - 1) / stride
        let highNum = size - 1 + padding - kOffset
        let hi = highNum < 0 ? -1 : highNum / stride
        return (min(lo, outSize), max(min(hi + 1, outSize), min(lo, outSize)))
    }

    /// Where channel c of pixel (ih, iw) of a sample sits: c·H·W + ih·W + iw, or channel-last (ih·W + iw)·Cin + c.
    @inline(__always)
    private func strides(h: Int, w: Int) -> (channel: Int, pixel: Int) {
        layout == .channelsLast ? (1, inChannels) : (h * w, 1)
    }

    /// One sample (in this layer's layout) → its Ho·Wo columns of col: row r = (c, kh, kw) starts at
    /// `col + r·rowStride`.
    func im2col(_ x: UnsafePointer<Float>, h: Int, w: Int, ho: Int, wo: Int,
                into col: UnsafeMutablePointer<Float>, rowStride: Int) {
        let k = kernel, s = stride, p = padding
        let (channelStride, pixel) = strides(h: h, w: w)
        for c in 0..<inChannels {
            for kh in 0..<k {
                let (oh0, oh1) = validRange(kOffset: kh, size: h, outSize: ho)
                for kw in 0..<k {
                    let (ow0, ow1) = validRange(kOffset: kw, size: w, outSize: wo)
                    let dst = col + ((c * k + kh) * k + kw) * rowStride
                    for oh in 0..<ho {
                        let row = dst + oh * wo
                        if oh < oh0 || oh >= oh1 {
                            for i in 0..<wo { row[i] = 0 }
                            continue
                        }
                        let src = x + c * channelStride + ((oh * s + kh - p) * w + kw - p) * pixel
                        for i in 0..<ow0 { row[i] = 0 }
                        if s == 1 && pixel == 1 {
                            if ow1 > ow0 { (row + ow0).update(from: src + ow0, count: ow1 - ow0) }
                        } else {
                            for i in ow0..<ow1 { row[i] = src[i * s * pixel] }
                        }
                        for i in ow1..<wo { row[i] = 0 }
                    }
                }
            }
        }
    }

    /// One sample's Ho·Wo columns of col (row r at `col + r·rowStride`) → the sample in this layer's layout,
    /// summing overlapping patches (overwrites `dx`).
    func col2im(_ col: UnsafePointer<Float>, rowStride: Int, h: Int, w: Int, ho: Int, wo: Int,
                into dx: UnsafeMutablePointer<Float>) {
        let k = kernel, s = stride, p = padding
        let (channelStride, pixel) = strides(h: h, w: w)
        dx.update(repeating: 0, count: inChannels * h * w)
        for c in 0..<inChannels {
            for kh in 0..<k {
                let (oh0, oh1) = validRange(kOffset: kh, size: h, outSize: ho)
                for kw in 0..<k {
                    let (ow0, ow1) = validRange(kOffset: kw, size: w, outSize: wo)
                    let src = col + ((c * k + kh) * k + kw) * rowStride
                    for oh in oh0..<oh1 {
                        let row = src + oh * wo
                        let dst = dx + c * channelStride + ((oh * s + kh - p) * w + kw - p) * pixel
                        if s == 1 && pixel == 1 {
                            for i in ow0..<ow1 { dst[i] += row[i] }
                        } else {
                            for i in ow0..<ow1 { dst[i * s * pixel] += row[i] }
                        }
                    }
                }
            }
        }
    }
}
