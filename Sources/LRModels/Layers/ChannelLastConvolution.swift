/// Direct convolution kernels over one zero-padded, channel-last image, for stride-1 convolutions (no im2col).
///
/// An image padded by `p` on every side and stored channel-last, pixel (r, c) at flat index r·Wp + c, has one
/// property that removes im2col: if output pixel (oh, ow) is stored at flat index q = oh·Wp + ow (rows as wide as
/// the padded input, so the last Wp − Wo of each row are unused), then its input under kernel tap (kh, kw) is padded
/// pixel q + kh·Wp + kw for every q. A tap is a constant shift, so the convolution is
///
///     out[q][co] = Σ_taps Σ_ci  input[q + shift(tap)][ci] · weights[tap][ci][co]
///
/// computed in registers, four output pixels × sixteen output channels at a time, each weight row loaded once per
/// four pixels (blocks of six need more registers than AVX2's sixteen: the compiler spills them, 4× slower). The
/// input gradient of a 'same' convolution (K = 2p + 1) is the same computation on the padded output gradient with
/// the kernel flipped and transposed, and the weight gradient is the reduction
///
///     dW[tap][ci][co] += Σ_q input[q + shift(tap)][ci] · grad[q][co]        (grad zero at unused pixels)
///
/// Buffers hold `paddedPixels(...)` pixels, so the last block of pixels and the largest shift stay inside them.
enum ChannelLastConvolution {
    /// Output pixels computed per register block.
    static let pixelBlock = 4
    /// Output channels per register block: two 8-float vectors.
    static let channelBlock = 16

    /// Output pixels computed for `rows` output rows of a padded width `wp`: rounded up to whole blocks.
    static func outputPixels(rows: Int, paddedWidth wp: Int) -> Int {
        (rows * wp + pixelBlock - 1) / pixelBlock * pixelBlock
    }

    /// Pixels a padded input (or padded output gradient) buffer holds: every pixel the kernels may read.
    static func paddedPixels(rows: Int, paddedWidth wp: Int, kernel k: Int) -> Int {
        outputPixels(rows: rows, paddedWidth: wp) + (k - 1) * (wp + 1)
    }

    /// out[q][co] = Σ_{kh,kw,ci} input[q + kh·wp + kw][ci] · weights[(kh·k + kw)][ci][co] for q < `pixels`
    /// (a multiple of `pixelBlock`); `outChannels` a multiple of `channelBlock`. Overwrites `output`.
    static func convolve(input: UnsafePointer<Float>, inChannels cin: Int, paddedWidth wp: Int, kernel k: Int,
                         weights: UnsafePointer<Float>, outChannels cout: Int,
                         output: UnsafeMutablePointer<Float>, pixels: Int) {
        var co = 0
        while co < cout {
            var q = 0
            while q < pixels {
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
                for kh in 0..<k {
                    for kw in 0..<k {
                        let x = input + (q + kh * wp + kw) * cin
                        let w = weights + (kh * k + kw) * cin * cout + co
                        for ci in 0..<cin {
                            let w0 = load8(w + ci * cout), w1 = load8(w + ci * cout + 8)
                            var b = SIMD8<Float>(repeating: x[ci])
                            a0 = fma(b, w0, a0); a1 = fma(b, w1, a1)
                            b = SIMD8<Float>(repeating: x[cin + ci])
                            a2 = fma(b, w0, a2); a3 = fma(b, w1, a3)
                            b = SIMD8<Float>(repeating: x[2 * cin + ci])
                            a4 = fma(b, w0, a4); a5 = fma(b, w1, a5)
                            b = SIMD8<Float>(repeating: x[3 * cin + ci])
                            a6 = fma(b, w0, a6); a7 = fma(b, w1, a7)
                        }
                    }
                }
                let y = output + q * cout + co
                store8(a0, y); store8(a1, y + 8)
                store8(a2, y + cout); store8(a3, y + cout + 8)
                store8(a4, y + 2 * cout); store8(a5, y + 2 * cout + 8)
                store8(a6, y + 3 * cout); store8(a7, y + 3 * cout + 8)
                q += pixelBlock
            }
            co += channelBlock
        }
    }

    /// dW[(kh·k + kw)][ci][co] += Σ_{q < pixels} input[q + kh·wp + kw][ci] · grad[q][co]; `inChannels` a multiple
    /// of 4, `outChannels` of `channelBlock`. Pixels are taken in chunks that stay in the L1 cache across taps.
    static func accumulateWeightGradient(input: UnsafePointer<Float>, inChannels cin: Int, paddedWidth wp: Int,
                                         kernel k: Int, grad: UnsafePointer<Float>, outChannels cout: Int,
                                         pixels: Int, into dw: UnsafeMutablePointer<Float>) {
        let chunk = 96
        var q0 = 0
        while q0 < pixels {
            let q1 = min(pixels, q0 + chunk)
            for kh in 0..<k {
                for kw in 0..<k {
                    let shift = kh * wp + kw
                    let tap = dw + (kh * k + kw) * cin * cout
                    var ci = 0
                    while ci < cin {
                        var co = 0
                        while co < cout {
                            let d = tap + ci * cout + co
                            var a0 = load8(d), a1 = load8(d + 8)
                            var a2 = load8(d + cout), a3 = load8(d + cout + 8)
                            var a4 = load8(d + 2 * cout), a5 = load8(d + 2 * cout + 8)
                            var a6 = load8(d + 3 * cout), a7 = load8(d + 3 * cout + 8)
                            for q in q0..<q1 {
                                let g = grad + q * cout + co
                                let g0 = load8(g), g1 = load8(g + 8)
                                let x = input + (q + shift) * cin + ci
                                var b = SIMD8<Float>(repeating: x[0])
                                a0 = fma(b, g0, a0); a1 = fma(b, g1, a1)
                                b = SIMD8<Float>(repeating: x[1])
                                a2 = fma(b, g0, a2); a3 = fma(b, g1, a3)
                                b = SIMD8<Float>(repeating: x[2])
                                a4 = fma(b, g0, a4); a5 = fma(b, g1, a5)
                                b = SIMD8<Float>(repeating: x[3])
                                a6 = fma(b, g0, a6); a7 = fma(b, g1, a7)
                            }
                            store8(a0, d); store8(a1, d + 8)
                            store8(a2, d + cout); store8(a3, d + cout + 8)
                            store8(a4, d + 2 * cout); store8(a5, d + 2 * cout + 8)
                            store8(a6, d + 3 * cout); store8(a7, d + 3 * cout + 8)
                            co += channelBlock
                        }
                        ci += 4
                    }
                }
            }
            q0 = q1
        }
    }
}

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// a·b + c with one rounding (a fused multiply-add instruction on x86-64-v3).
@inline(__always)
private func fma(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
    c.addingProduct(a, b)
}

extension ChannelLastConvolution {
    /// One NCHW sample [C, H, W] → the interior of a padded channel-last image whose row is `paddedWidth` pixels:
    /// pixel (ih, iw) channel c at `interior[(ih·Wp + iw)·C + c]` (the border is left as it is: zero).
    static func pack(_ x: UnsafePointer<Float>, channels c: Int, h: Int, w: Int, paddedWidth wp: Int,
                     into interior: UnsafeMutablePointer<Float>) {
        let plane = h * w
        for ih in 0..<h {
            for iw in 0..<w {
                let src = x + ih * w + iw, dst = interior + (ih * wp + iw) * c
                for ch in 0..<c { dst[ch] = src[ch * plane] }
            }
        }
    }

    /// The inverse of `pack` for an output of `h`×`w` pixels stored at rows of `paddedWidth`: → NCHW [C, H, W],
    /// adding `bias[c]` when given.
    static func unpack(_ y: UnsafePointer<Float>, channels c: Int, h: Int, w: Int, paddedWidth wp: Int,
                       bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        for ch in 0..<c {
            let add = bias?[ch] ?? 0
            let plane = out + ch * h * w
            for oh in 0..<h {
                let src = y + oh * wp * c + ch, dst = plane + oh * w
                for ow in 0..<w { dst[ow] = src[ow * c] + add }
            }
        }
    }
}

/// The buffers of one stride-1 convolution's channel-last path, one set per worker thread, plus the repacked
/// kernels. Allocated when the image size, worker count or channel counts change, not in a steady-state step;
/// the padded images' borders are zeroed then and never written again.
final class ChannelLastScratch: @unchecked Sendable {
    private(set) var workers = 0
    private(set) var geometry: (h: Int, w: Int) = (0, 0)
    /// Per worker: the padded input [paddedPixels][Cin], the padded output gradient [paddedPixels][Cout], a
    /// product [outputPixels][max(Cin, Cout)], and partial weight [K·K][Cin][Cout] and bias [Cout] gradients.
    private(set) var paddedInput: [UnsafeMutablePointer<Float>] = []
    private(set) var paddedGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var product: [UnsafeMutablePointer<Float>] = []
    private(set) var weightGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var biasGradient: [UnsafeMutablePointer<Float>] = []
    /// [K·K][Cin][Cout] (forward) and the flipped, transposed [K·K][Cout][Cin] (input gradient).
    let forwardKernel: UnsafeMutablePointer<Float>
    let backwardKernel: UnsafeMutablePointer<Float>
    private var sizes = (input: 0, gradient: 0, product: 0, weights: 0, bias: 0)

    init(kernelFloats: Int) {
        forwardKernel = .allocate(capacity: kernelFloats)
        backwardKernel = .allocate(capacity: kernelFloats)
    }

    deinit {
        release()
        forwardKernel.deallocate()
        backwardKernel.deallocate()
    }

    private func release() {
        for list in [paddedInput, paddedGradient, product, weightGradient, biasGradient] {
            for p in list { p.deallocate() }
        }
        paddedInput = []; paddedGradient = []; product = []; weightGradient = []; biasGradient = []
    }

    /// Makes `workers` sets of buffers for images of `h`×`w` (padded to `hp`×`wp`), unless they exist.
    func prepare(workers: Int, h: Int, w: Int, inChannels cin: Int, outChannels cout: Int, kernel k: Int,
                 paddedWidth wp: Int) {
        guard workers != self.workers || h != geometry.h || w != geometry.w else { return }
        release()
        let padded = ChannelLastConvolution.paddedPixels(rows: h, paddedWidth: wp, kernel: k)
        let pixels = ChannelLastConvolution.outputPixels(rows: h, paddedWidth: wp)
        sizes = (padded * cin, padded * cout, pixels * max(cin, cout), k * k * cin * cout, cout)
        func zeroed(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        paddedInput = (0..<workers).map { _ in zeroed(sizes.input) }
        paddedGradient = (0..<workers).map { _ in zeroed(sizes.gradient) }
        product = (0..<workers).map { _ in zeroed(sizes.product) }
        weightGradient = (0..<workers).map { _ in zeroed(sizes.weights) }
        biasGradient = (0..<workers).map { _ in zeroed(sizes.bias) }
        self.workers = workers
        geometry = (h, w)
    }

    /// Zeroes every worker's partial gradients.
    func clearPartialGradients() {
        for p in weightGradient { p.update(repeating: 0, count: sizes.weights) }
        for p in biasGradient { p.update(repeating: 0, count: sizes.bias) }
    }
}
