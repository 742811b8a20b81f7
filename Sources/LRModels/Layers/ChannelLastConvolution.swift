/// Direct convolution kernels over one zero-padded, channel-last image (no im2col).
///
/// An image padded by `p` on every side and stored channel-last, pixel (r, c) at flat index r·Wp + c, has one
/// property that removes im2col: for a stride-1 convolution, if output pixel (oh, ow) is stored at flat index
/// q = oh·Wp + ow (rows as wide as the padded input, the last few pixels of each unused), its input under kernel tap
/// (kh, kw) is padded pixel q + kh·Wp + kw for every q. A tap is a constant shift, so the convolution is
///
///     out[q][co] = Σ_taps Σ_ci  input[q + shift(tap)][ci] · weights[tap][ci][co]
///
/// over the whole image as one run of pixels. With stride s the output is walked row by row instead (`Walk`):
/// pixel j of output row r reads input pixel r·s·Wp + s·j + shift(tap). The kernels compute four output pixels ×
/// sixteen channels in registers, each weight row loaded once per four pixels (blocks of six need more registers
/// than AVX2's sixteen: the compiler spills them, 4× slower). The weight gradient is the reduction
///
///     dW[tap][ci][co] += Σ_q input[in(q) + shift(tap)][ci] · grad[q][co]        (grad zero at unused pixels)
///
/// and the input gradient the scatter dx[in(q) + shift(tap)] += W[tap] · grad[q] (`scatter`), or, for a stride-1
/// 'same' convolution (K = 2p + 1), the convolution of the padded output gradient with the kernel flipped and
/// transposed (`convolve` again, no read-modify-write). `Geometry` sizes the buffers so that the last block of
/// pixels and the largest shift stay inside them.
enum ChannelLastConvolution {
    /// Output pixels computed per register block.
    static let pixelBlock = 4
    /// Channels per register block: two 8-float vectors.
    static let channelBlock = 16

    /// How output pixels map to input pixels: output pixel j of row r (stored at r·rowPixels + j) reads input
    /// pixel r·inputRowStep + stride·j (+ the tap's shift).
    struct Walk: Equatable {
        let rows: Int, rowPixels: Int, inputRowStep: Int, stride: Int
        var pixels: Int { rows * rowPixels }
    }

    /// The layout of one sample's images for a convolution of an `h`×`w` input.
    struct Geometry: Equatable {
        let h: Int, w: Int, kernel: Int, padding: Int, stride: Int
        /// The output size.
        let ho: Int, wo: Int
        /// The padded input's row, in pixels.
        let paddedWidth: Int
        /// The output's pixels as the kernels walk them; stored rows of `outputWidth` pixels.
        let walk: Walk
        let outputWidth: Int
        /// Pixels a padded input buffer holds: every pixel the kernels may read or scatter to.
        let paddedPixels: Int

        init(h: Int, w: Int, kernel k: Int, padding p: Int, stride s: Int) {
            self.h = h; self.w = w; kernel = k; padding = p; stride = s
            ho = (h + 2 * p - k) / s + 1
            wo = (w + 2 * p - k) / s + 1
            let wp = w + 2 * p
            paddedWidth = wp
            if s == 1 {
                outputWidth = wp
                walk = Walk(rows: 1, rowPixels: (ho * wp + pixelBlock - 1) / pixelBlock * pixelBlock, inputRowStep: 0,
                            stride: 1)
            } else {
                outputWidth = (wo + pixelBlock - 1) / pixelBlock * pixelBlock
                walk = Walk(rows: ho, rowPixels: outputWidth, inputRowStep: s * wp, stride: s)
            }
            let lastRead = (walk.rows - 1) * walk.inputRowStep + s * (walk.rowPixels - 1) + (k - 1) * (wp + 1)
            paddedPixels = max(lastRead + 1, (h + 2 * p) * wp)
        }

        /// Output pixels computed.
        var pixels: Int { walk.pixels }
        /// Where input pixel (0, 0) sits in the padded image.
        var interiorOffset: Int { padding * paddedWidth + padding }
    }

    /// out[q][co] = Σ_{kh,kw,ci} input[in(q) + kh·wp + kw][ci] · weights[(kh·k + kw)][ci][co] for every output
    /// pixel q of `walk`; `outChannels` a multiple of `channelBlock`. Overwrites `output`.
    static func convolve(input: UnsafePointer<Float>, inChannels cin: Int, walk: Walk, paddedWidth wp: Int,
                         kernel k: Int, weights: UnsafePointer<Float>, outChannels cout: Int,
                         output: UnsafeMutablePointer<Float>) {
        let step = walk.stride * cin
        var co = 0
        while co < cout {
            for r in 0..<walk.rows {
                var j = 0
                while j < walk.rowPixels {
                    let first = r * walk.inputRowStep + walk.stride * j
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                    var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
                    for kh in 0..<k {
                        for kw in 0..<k {
                            let x = input + (first + kh * wp + kw) * cin
                            let w = weights + (kh * k + kw) * cin * cout + co
                            for ci in 0..<cin {
                                let w0 = load8(w + ci * cout), w1 = load8(w + ci * cout + 8)
                                var b = SIMD8<Float>(repeating: x[ci])
                                a0 = fma(b, w0, a0); a1 = fma(b, w1, a1)
                                b = SIMD8<Float>(repeating: x[step + ci])
                                a2 = fma(b, w0, a2); a3 = fma(b, w1, a3)
                                b = SIMD8<Float>(repeating: x[2 * step + ci])
                                a4 = fma(b, w0, a4); a5 = fma(b, w1, a5)
                                b = SIMD8<Float>(repeating: x[3 * step + ci])
                                a6 = fma(b, w0, a6); a7 = fma(b, w1, a7)
                            }
                        }
                    }
                    let y = output + (r * walk.rowPixels + j) * cout + co
                    store8(a0, y); store8(a1, y + 8)
                    store8(a2, y + cout); store8(a3, y + cout + 8)
                    store8(a4, y + 2 * cout); store8(a5, y + 2 * cout + 8)
                    store8(a6, y + 3 * cout); store8(a7, y + 3 * cout + 8)
                    j += pixelBlock
                }
            }
            co += channelBlock
        }
    }

    /// dW[(kh·k + kw)][ci][co] += Σ_q input[in(q) + kh·wp + kw][ci] · grad[q][co] over the output pixels of
    /// `walk`; `inChannels` a multiple of 4, `outChannels` of `channelBlock`. Pixels are taken in chunks of rows
    /// that stay in the L1 cache across taps.
    static func accumulateWeightGradient(input: UnsafePointer<Float>, inChannels cin: Int, walk: Walk,
                                         paddedWidth wp: Int, kernel k: Int, grad: UnsafePointer<Float>,
                                         outChannels cout: Int, into dw: UnsafeMutablePointer<Float>) {
        // A stride-1 walk is one long row: cut it into chunks; a strided walk takes whole rows per chunk.
        let chunk = 96
        let (rowsPerChunk, piece) = walk.rows == 1 ? (1, chunk) : (max(1, chunk / walk.rowPixels), walk.rowPixels)
        var r0 = 0, j0 = 0
        while r0 < walk.rows {
            let r1 = min(walk.rows, r0 + rowsPerChunk), j1 = min(walk.rowPixels, j0 + piece)
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
                            for r in r0..<r1 {
                                let g = grad + (r * walk.rowPixels) * cout + co
                                let x = input + (r * walk.inputRowStep + shift) * cin + ci
                                for j in j0..<j1 {
                                    let gj = g + j * cout, xj = x + walk.stride * j * cin
                                    let g0 = load8(gj), g1 = load8(gj + 8)
                                    var b = SIMD8<Float>(repeating: xj[0])
                                    a0 = fma(b, g0, a0); a1 = fma(b, g1, a1)
                                    b = SIMD8<Float>(repeating: xj[1])
                                    a2 = fma(b, g0, a2); a3 = fma(b, g1, a3)
                                    b = SIMD8<Float>(repeating: xj[2])
                                    a4 = fma(b, g0, a4); a5 = fma(b, g1, a5)
                                    b = SIMD8<Float>(repeating: xj[3])
                                    a6 = fma(b, g0, a6); a7 = fma(b, g1, a7)
                                }
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
            if walk.rows == 1 && j1 < walk.rowPixels { j0 = j1 } else { r0 = r1; j0 = 0 }
        }
    }

    /// dx[in(q) + kh·wp + kw][ci] += Σ_co grad[q][co] · weights[(kh·k + kw)][co][ci] over the output pixels of
    /// `walk`: the input gradient of any geometry (`dx` a padded image, its border discarded); `inChannels` a
    /// multiple of `channelBlock`.
    static func scatter(grad: UnsafePointer<Float>, outChannels cout: Int, weights: UnsafePointer<Float>, walk: Walk,
                        paddedWidth wp: Int, kernel k: Int, inChannels cin: Int, into dx: UnsafeMutablePointer<Float>) {
        let step = walk.stride * cin
        for kh in 0..<k {
            for kw in 0..<k {
                let w = weights + (kh * k + kw) * cout * cin
                for r in 0..<walk.rows {
                    var j = 0
                    while j < walk.rowPixels {
                        let g = grad + (r * walk.rowPixels + j) * cout
                        let first = r * walk.inputRowStep + walk.stride * j + kh * wp + kw
                        var ci = 0
                        while ci < cin {
                            let d = dx + first * cin + ci
                            var a0 = load8(d), a1 = load8(d + 8)
                            var a2 = load8(d + step), a3 = load8(d + step + 8)
                            var a4 = load8(d + 2 * step), a5 = load8(d + 2 * step + 8)
                            var a6 = load8(d + 3 * step), a7 = load8(d + 3 * step + 8)
                            for co in 0..<cout {
                                let w0 = load8(w + co * cin + ci), w1 = load8(w + co * cin + ci + 8)
                                var b = SIMD8<Float>(repeating: g[co])
                                a0 = fma(b, w0, a0); a1 = fma(b, w1, a1)
                                b = SIMD8<Float>(repeating: g[cout + co])
                                a2 = fma(b, w0, a2); a3 = fma(b, w1, a3)
                                b = SIMD8<Float>(repeating: g[2 * cout + co])
                                a4 = fma(b, w0, a4); a5 = fma(b, w1, a5)
                                b = SIMD8<Float>(repeating: g[3 * cout + co])
                                a6 = fma(b, w0, a6); a7 = fma(b, w1, a7)
                            }
                            store8(a0, d); store8(a1, d + 8)
                            store8(a2, d + step); store8(a3, d + step + 8)
                            store8(a4, d + 2 * step); store8(a5, d + 2 * step + 8)
                            store8(a6, d + 3 * step); store8(a7, d + 3 * step + 8)
                            ci += channelBlock
                        }
                        j += pixelBlock
                    }
                }
            }
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
    /// One NCHW sample [C, H, W] → a channel-last image whose rows are `rowWidth` pixels: pixel (ih, iw) channel
    /// c at `interior[(ih·rowWidth + iw)·C + c]` (the pixels between rows, a padded image's border, are left as
    /// they are: zero).
    static func pack(_ x: UnsafePointer<Float>, channels c: Int, h: Int, w: Int, rowWidth wp: Int,
                     into interior: UnsafeMutablePointer<Float>) {
        let plane = h * w
        for ih in 0..<h {
            for iw in 0..<w {
                let src = x + ih * w + iw, dst = interior + (ih * wp + iw) * c
                for ch in 0..<c { dst[ch] = src[ch * plane] }
            }
        }
    }

    /// The inverse of `pack`: `h`×`w` pixels stored in rows of `rowWidth` → NCHW [C, H, W], adding `bias[c]`
    /// when given.
    static func unpack(_ y: UnsafePointer<Float>, channels c: Int, h: Int, w: Int, rowWidth wp: Int,
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

/// The buffers of one convolution's channel-last path, one set per worker thread, plus the repacked kernels.
/// Allocated when the image size or worker count changes, not in a steady-state step; the padded images' borders
/// and the unused output pixels are zeroed then and never written again.
final class ChannelLastScratch: @unchecked Sendable {
    private(set) var workers = 0
    private(set) var geometry: ChannelLastConvolution.Geometry?
    /// Per worker: the padded input [paddedPixels][Cin]; the output gradient [paddedPixels][Cout] (padded for a
    /// stride-1 'same' convolution, else as the output's pixels); a product [pixels][max(Cin, Cout)]; the padded
    /// input gradient [paddedPixels][Cin] a scatter sums into; partial weight [K·K][Cin][Cout] and bias [Cout]
    /// gradients.
    private(set) var paddedInput: [UnsafeMutablePointer<Float>] = []
    private(set) var outputGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var product: [UnsafeMutablePointer<Float>] = []
    private(set) var inputGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var weightGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var biasGradient: [UnsafeMutablePointer<Float>] = []
    /// [K·K][Cin][Cout] (forward) and [K·K][Cout][Cin] (input gradient; the taps reversed for the flipped
    /// convolution of a stride-1 'same' convolution).
    let forwardKernel: UnsafeMutablePointer<Float>
    let backwardKernel: UnsafeMutablePointer<Float>
    private(set) var sizes = (input: 0, gradient: 0, product: 0, weights: 0, bias: 0)

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
        for list in [paddedInput, outputGradient, product, inputGradient, weightGradient, biasGradient] {
            for p in list { p.deallocate() }
        }
        paddedInput = []; outputGradient = []; product = []; inputGradient = []; weightGradient = []; biasGradient = []
    }

    /// Makes `workers` sets of buffers for `geometry`, unless they exist.
    func prepare(workers: Int, geometry g: ChannelLastConvolution.Geometry, inChannels cin: Int, outChannels cout: Int) {
        guard workers != self.workers || g != geometry else { return }
        release()
        sizes = (g.paddedPixels * cin, g.paddedPixels * cout, g.pixels * max(cin, cout), g.kernel * g.kernel * cin * cout, cout)
        func zeroed(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        paddedInput = (0..<workers).map { _ in zeroed(sizes.input) }
        outputGradient = (0..<workers).map { _ in zeroed(sizes.gradient) }
        product = (0..<workers).map { _ in zeroed(sizes.product) }
        inputGradient = (0..<workers).map { _ in zeroed(sizes.input) }
        weightGradient = (0..<workers).map { _ in zeroed(sizes.weights) }
        biasGradient = (0..<workers).map { _ in zeroed(sizes.bias) }
        self.workers = workers
        geometry = g
    }

    /// Zeroes every worker's partial gradients.
    func clearPartialGradients() {
        for p in weightGradient { p.update(repeating: 0, count: sizes.weights) }
        for p in biasGradient { p.update(repeating: 0, count: sizes.bias) }
    }
}
