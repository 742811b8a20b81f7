import LRTensor

/// A 2-D convolution over NCHW tensors (PyTorch's `nn.Conv2d`, groups = 1, dilation = 1), by im2col and one sgemm
/// per sample.
///
///     x:   [N, Cin, H, W]
///     W:   [Cout, Cin, K, K]        b: [Cout] (optional)
///     y:   [N, Cout, Ho, Wo]        Ho = (H + 2·pad − K)/stride + 1, Wo likewise
///     col: [Cin·K·K, Ho·Wo]         (one sample's patches; rebuilt in backward instead of kept for the batch)
///
///     forward:   y[n] = W · col(x[n]) + b
///     backward:  dW += dy[n] · col(x[n])ᵀ,   db += Σ dy[n],   dx[n] = col2im(Wᵀ · dy[n])
public final class Conv2d: Layer, @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?

    private let output = Tensor(shape: [0])
    private let gradInput = Tensor(shape: [0])
    private let col = Tensor(shape: [0])
    private let gradCol = Tensor(shape: [0])
    private var input: Tensor?

    /// Parameters are `<name>.weight` (and `<name>.bias` when `bias`), drawn from `rng` as PyTorch does.
    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, rng: inout Xoshiro256) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2d \(name): invalid geometry")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
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

    /// A 1×1, stride-1, unpadded convolution reads its input directly as `col`.
    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d: input \(x.shape), expected [N, \(inChannels), H, W]")
        input = x
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let (ho, wo) = outputSize(h: h, w: w)
        precondition(ho > 0 && wo > 0, "Conv2d: input \(h)x\(w) is smaller than the kernel")
        let kk = inChannels * kernel * kernel, hw = ho * wo, inPlane = inChannels * h * w
        output.ensureShape(n, outChannels, ho, wo)
        if !isPointwise { col.ensureShape(kk, hw) } else if col.count == 0 { col.resize([1]) }
        let pointwise = isPointwise
        x.withReadPointer { px in
            weight.value.withReadPointer { pw in
                output.withPointer { py in
                    col.withPointer { pc in
                        for s in 0..<n {
                            let xs = px + s * inPlane, ys = py + s * outChannels * hw
                            var beta: Float = 0
                            if let bias {
                                bias.value.withReadPointer { pb in
                                    for c in 0..<outChannels {
                                        let v = pb[c], row = ys + c * hw
                                        for i in 0..<hw { row[i] = v }
                                    }
                                }
                                beta = 1
                            }
                            let colPtr: UnsafePointer<Float>
                            if pointwise { colPtr = xs } else { im2col(xs, h: h, w: w, ho: ho, wo: wo, into: pc); colPtr = UnsafePointer(pc) }
                            BLAS.gemm(m: outChannels, n: hw, k: kk, a: pw, b: colPtr, beta: beta, c: ys)
                        }
                    }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let ho = output.shape[2], wo = output.shape[3]
        let kk = inChannels * kernel * kernel, hw = ho * wo, inPlane = inChannels * h * w
        let pointwise = isPointwise
        if needsInputGradient {
            gradInput.ensureShape(like: x)
            if !pointwise { gradCol.ensureShape(kk, hw) } else if gradCol.count == 0 { gradCol.resize([1]) }
        }
        x.withReadPointer { px in
            gradOutput.withReadPointer { pdy in
                weight.value.withReadPointer { pw in
                    weight.grad.withPointer { pdw in
                        col.withPointer { pc in
                            for s in 0..<n {
                                let xs = px + s * inPlane, dys = pdy + s * outChannels * hw
                                let colPtr: UnsafePointer<Float>
                                if pointwise { colPtr = xs } else { im2col(xs, h: h, w: w, ho: ho, wo: wo, into: pc); colPtr = UnsafePointer(pc) }
                                // dW[Cout, kk] += dy[n][Cout, hw] · colᵀ[hw, kk]
                                BLAS.gemm(transB: true, m: outChannels, n: kk, k: hw, a: dys, b: colPtr, beta: 1, c: pdw)
                            }
                        }
                    }
                }
                if let bias {
                    bias.grad.withPointer { pdb in
                        for s in 0..<n {
                            for c in 0..<outChannels {
                                let row = pdy + (s * outChannels + c) * hw
                                var acc: Float = 0
                                for i in 0..<hw { acc += row[i] }
                                pdb[c] += acc
                            }
                        }
                    }
                }
                guard needsInputGradient else { return }
                weight.value.withReadPointer { pw in
                    gradInput.withPointer { pdx in
                        gradCol.withPointer { pdc in
                            for s in 0..<n {
                                let dys = pdy + s * outChannels * hw, dxs = pdx + s * inPlane
                                if pointwise {
                                    // dx[n][Cin, hw] = Wᵀ[Cin, Cout] · dy[n][Cout, hw]
                                    BLAS.gemm(transA: true, m: kk, n: hw, k: outChannels, a: pw, b: dys, c: dxs)
                                } else {
                                    BLAS.gemm(transA: true, m: kk, n: hw, k: outChannels, a: pw, b: dys, c: pdc)
                                    col2im(pdc, h: h, w: w, ho: ho, wo: wo, into: dxs)
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
    private func validRange(kOffset: Int, size: Int, outSize: Int) -> (Int, Int) {
        // ow·s + k − p ≥ 0  ⇔ ow ≥ ceil((p − k)/s);   ow·s + k − p ≤ size − 1  ⇔ ow ≤ floor((size − 1 + p − k)/s)
        let lowNum = padding - kOffset
        let lo = lowNum <= 0 ? 0 : (lowNum + stride - 1) / stride
        let highNum = size - 1 + padding - kOffset
        let hi = highNum < 0 ? -1 : highNum / stride
        return (min(lo, outSize), max(min(hi + 1, outSize), min(lo, outSize)))
    }

    /// One sample [Cin, H, W] → col [Cin·K·K, Ho·Wo].
    private func im2col(_ x: UnsafePointer<Float>, h: Int, w: Int, ho: Int, wo: Int, into col: UnsafeMutablePointer<Float>) {
        let k = kernel, s = stride, p = padding
        for c in 0..<inChannels {
            for kh in 0..<k {
                let (oh0, oh1) = validRange(kOffset: kh, size: h, outSize: ho)
                for kw in 0..<k {
                    let (ow0, ow1) = validRange(kOffset: kw, size: w, outSize: wo)
                    let dst = col + ((c * k + kh) * k + kw) * ho * wo
                    for oh in 0..<ho {
                        let row = dst + oh * wo
                        if oh < oh0 || oh >= oh1 {
                            for i in 0..<wo { row[i] = 0 }
                            continue
                        }
                        let src = x + (c * h + oh * s + kh - p) * w + kw - p
                        for i in 0..<ow0 { row[i] = 0 }
                        if s == 1 {
                            if ow1 > ow0 { (row + ow0).update(from: src + ow0, count: ow1 - ow0) }
                        } else {
                            for i in ow0..<ow1 { row[i] = src[i * s] }
                        }
                        for i in ow1..<wo { row[i] = 0 }
                    }
                }
            }
        }
    }

    /// col [Cin·K·K, Ho·Wo] → one sample [Cin, H, W], summing overlapping patches (overwrites `dx`).
    private func col2im(_ col: UnsafePointer<Float>, h: Int, w: Int, ho: Int, wo: Int, into dx: UnsafeMutablePointer<Float>) {
        let k = kernel, s = stride, p = padding
        dx.update(repeating: 0, count: inChannels * h * w)
        for c in 0..<inChannels {
            for kh in 0..<k {
                let (oh0, oh1) = validRange(kOffset: kh, size: h, outSize: ho)
                for kw in 0..<k {
                    let (ow0, ow1) = validRange(kOffset: kw, size: w, outSize: wo)
                    let src = col + ((c * k + kh) * k + kw) * ho * wo
                    for oh in oh0..<oh1 {
                        let row = src + oh * wo
                        let dst = dx + (c * h + oh * s + kh - p) * w + kw - p
                        if s == 1 {
                            for i in ow0..<ow1 { dst[i] += row[i] }
                        } else {
                            for i in ow0..<ow1 { dst[i * s] += row[i] }
                        }
                    }
                }
            }
        }
    }
}
