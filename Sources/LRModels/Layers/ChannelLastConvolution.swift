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

        /// `compactRows`: walk a stride-1 output row by row too when Wo is a multiple of the pixel block, so that
        /// its rows are stored Wo wide, as a channel-last tensor's (the kernels then write and read the layer's
        /// tensors directly, and skip the padding columns the single run computes).
        init(h: Int, w: Int, kernel k: Int, padding p: Int, stride s: Int, compactRows: Bool = false) {
            self.h = h; self.w = w; kernel = k; padding = p; stride = s
            ho = (h + 2 * p - k) / s + 1
            wo = (w + 2 * p - k) / s + 1
            let wp = w + 2 * p
            paddedWidth = wp
            if s == 1 && !(compactRows && wo % pixelBlock == 0) {
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
        /// Whether the output's rows are stored as wide as the output: a channel-last sample as it is.
        var compactOutput: Bool { outputWidth == wo }
    }

    /// out[q][co] = Σ_{kh,kw,ci} input[in(q) + kh·wp + kw][ci] · weights[(kh·k + kw)][ci][co] for every output
    /// pixel q of `walk`; `outChannels` a multiple of `channelBlock`. Overwrites `output`.
    @inline(never)
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
                    var tile = Tile()
                    for kh in 0..<k {
                        for kw in 0..<k {
                            let x = input + (first + kh * wp + kw) * cin
                            let w = weights + (kh * k + kw) * cin * cout + co
                            for ci in 0..<cin {
                                tile.add(x[ci], x[step + ci], x[2 * step + ci], x[3 * step + ci],
                                         times: w + ci * cout)
                            }
                        }
                    }
                    tile.store(output + (r * walk.rowPixels + j) * cout + co, rowStride: cout)
                    j += pixelBlock
                }
            }
            co += channelBlock
        }
    }

    /// dW[(kh·k + kw)][ci][co] += Σ_q input[in(q) + kh·wp + kw][ci] · grad[q][co] over the output pixels of
    /// `walk`; `outChannels` a multiple of `channelBlock`. Pixels are taken in chunks of rows that stay in the L1
    /// cache across taps.
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
                    while ci + 4 <= cin {
                        var co = 0
                        while co < cout {
                            let d = tap + ci * cout + co
                            var tile = Tile(d, rowStride: cout)
                            for r in r0..<r1 {
                                let g = grad + (r * walk.rowPixels) * cout + co
                                let x = input + (r * walk.inputRowStep + shift) * cin + ci
                                for j in j0..<j1 {
                                    let xj = x + walk.stride * j * cin
                                    tile.add(xj[0], xj[1], xj[2], xj[3], times: g + j * cout)
                                }
                            }
                            tile.store(d, rowStride: cout)
                            co += channelBlock
                        }
                        ci += 4
                    }
                    // Channels left over (a 1-channel stem): one input channel at a time, four pixels' products in
                    // separate accumulators, summed at the end.
                    while ci < cin {
                        var co = 0
                        while co < cout {
                            let d = tap + ci * cout + co
                            var tile = Tile()
                            for r in r0..<r1 {
                                let g = grad + (r * walk.rowPixels) * cout + co
                                let x = input + (r * walk.inputRowStep + shift) * cin + ci
                                var j = j0
                                while j + 4 <= j1 {
                                    let xj = x + walk.stride * j * cin, step = walk.stride * cin
                                    tile.addRows(xj[0], xj[step], xj[2 * step], xj[3 * step], times: g + j * cout,
                                                 rowStride: cout)
                                    j += 4
                                }
                                while j < j1 {
                                    tile.addRows(x[walk.stride * j * cin], 0, 0, 0, times: g + j * cout, rowStride: 0)
                                    j += 1
                                }
                            }
                            tile.accumulateRowSums(into: d)
                            co += channelBlock
                        }
                        ci += 1
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
                            var tile = Tile(d, rowStride: step)
                            for co in 0..<cout {
                                tile.add(g[co], g[cout + co], g[2 * cout + co], g[3 * cout + co], times: w + co * cin + ci)
                            }
                            tile.store(d, rowStride: step)
                            ci += channelBlock
                        }
                        j += pixelBlock
                    }
                }
            }
        }
    }
}

/// A register block: four rows (pixels, or input channels for the weight gradient) of sixteen floats, two 8-float
/// vectors each — eight accumulators, which with the two operand vectors and a broadcast fit AVX2's sixteen
/// registers.
private struct Tile {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()

    @inline(__always) init() {}

    /// Loads rows `p`, `p + rowStride`, …
    @inline(__always)
    init(_ p: UnsafeMutablePointer<Float>, rowStride: Int) {
        a0 = load8(p); a1 = load8(p + 8)
        a2 = load8(p + rowStride); a3 = load8(p + rowStride + 8)
        a4 = load8(p + 2 * rowStride); a5 = load8(p + 2 * rowStride + 8)
        a6 = load8(p + 3 * rowStride); a7 = load8(p + 3 * rowStride + 8)
    }

    /// row j += v_j · v[0..<16], one fused multiply-add per vector.
    @inline(__always)
    mutating func add(_ v0: Float, _ v1: Float, _ v2: Float, _ v3: Float, times v: UnsafePointer<Float>) {
        let w0 = load8(v), w1 = load8(v + 8)
        var b = SIMD8<Float>(repeating: v0)
        a0 = a0.addingProduct(b, w0); a1 = a1.addingProduct(b, w1)
        b = SIMD8<Float>(repeating: v1)
        a2 = a2.addingProduct(b, w0); a3 = a3.addingProduct(b, w1)
        b = SIMD8<Float>(repeating: v2)
        a4 = a4.addingProduct(b, w0); a5 = a5.addingProduct(b, w1)
        b = SIMD8<Float>(repeating: v3)
        a6 = a6.addingProduct(b, w0); a7 = a7.addingProduct(b, w1)
    }

    /// row j += v_j · v[j·rowStride ..< j·rowStride + 16]: four pixels' contributions to one row of sixteen.
    @inline(__always)
    mutating func addRows(_ v0: Float, _ v1: Float, _ v2: Float, _ v3: Float, times v: UnsafePointer<Float>,
                          rowStride: Int) {
        a0 = a0.addingProduct(SIMD8(repeating: v0), load8(v)); a1 = a1.addingProduct(SIMD8(repeating: v0), load8(v + 8))
        let v1p = v + rowStride, v2p = v + 2 * rowStride, v3p = v + 3 * rowStride
        a2 = a2.addingProduct(SIMD8(repeating: v1), load8(v1p)); a3 = a3.addingProduct(SIMD8(repeating: v1), load8(v1p + 8))
        a4 = a4.addingProduct(SIMD8(repeating: v2), load8(v2p)); a5 = a5.addingProduct(SIMD8(repeating: v2), load8(v2p + 8))
        a6 = a6.addingProduct(SIMD8(repeating: v3), load8(v3p)); a7 = a7.addingProduct(SIMD8(repeating: v3), load8(v3p + 8))
    }

    /// p[0..<16] += the sum of the four rows.
    @inline(__always)
    func accumulateRowSums(into p: UnsafeMutablePointer<Float>) {
        store8(load8(p) + ((a0 + a2) + (a4 + a6)), p)
        store8(load8(p + 8) + ((a1 + a3) + (a5 + a7)), p + 8)
    }

    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>, rowStride: Int) {
        store8(a0, p); store8(a1, p + 8)
        store8(a2, p + rowStride); store8(a3, p + rowStride + 8)
        store8(a4, p + 2 * rowStride); store8(a5, p + 2 * rowStride + 8)
        store8(a6, p + 3 * rowStride); store8(a7, p + 3 * rowStride + 8)
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

extension ChannelLastConvolution {
    /// One NCHW sample [C, H, W] → a channel-last image whose rows are `rowWidth` pixels: pixel (ih, iw) channel
    /// c at `interior[(ih·rowWidth + iw)·C + c]` (the pixels between rows, a padded image's border, are left as
    /// they are: zero). `C` a multiple of 8: blocks of 8 pixels × 8 channels are transposed in registers.
    /// A sample already channel-last ([H, W, C], `from: .channelsLast`) needs only a copy per row.
    @inline(never)
    static func pack(_ x: UnsafePointer<Float>, from layout: ActivationLayout = .channelsFirst, channels c: Int,
                     h: Int, w: Int, rowWidth wp: Int, into interior: UnsafeMutablePointer<Float>) {
        if layout == .channelsLast {
            for r in 0..<h { (interior + r * wp * c).update(from: x + r * w * c, count: w * c) }
            return
        }
        let plane = h * w, blocked = plane / 8 * 8
        var p = 0, ih = 0, iw = 0  // pixel p = (ih, iw) of the plane
        while p < blocked {
            // Destinations of the block's 8 pixels (a block may cross a row: the padding sits between rows).
            var row = ih, col = iw
            func next() -> UnsafeMutablePointer<Float> {
                let d = interior + (row * wp + col) * c
                col += 1
                if col == w { col = 0; row += 1 }
                return d
            }
            let d0 = next(), d1 = next(), d2 = next(), d3 = next(), d4 = next(), d5 = next(), d6 = next(), d7 = next()
            (ih, iw) = (row, col)
            var ch = 0
            while ch < c {
                let s = x + ch * plane + p
                let t = transpose8x8(load8(s), load8(s + plane), load8(s + 2 * plane), load8(s + 3 * plane),
                                     load8(s + 4 * plane), load8(s + 5 * plane), load8(s + 6 * plane), load8(s + 7 * plane))
                store8(t.0, d0 + ch); store8(t.1, d1 + ch); store8(t.2, d2 + ch); store8(t.3, d3 + ch)
                store8(t.4, d4 + ch); store8(t.5, d5 + ch); store8(t.6, d6 + ch); store8(t.7, d7 + ch)
                ch += 8
            }
            p += 8
        }
        while p < plane {
            let dst = interior + (ih * wp + iw) * c
            for ch in 0..<c { dst[ch] = x[ch * plane + p] }
            p += 1; iw += 1
            if iw == w { iw = 0; ih += 1 }
        }
    }

    /// The inverse of `pack`: `h`×`w` pixels stored in rows of `rowWidth` → NCHW [C, H, W], adding `bias[c]`
    /// when given.
    /// `to: .channelsLast` writes [H, W, C]: a copy per row.
    @inline(never)
    static func unpack(_ y: UnsafePointer<Float>, to layout: ActivationLayout = .channelsFirst, channels c: Int,
                       h: Int, w: Int, rowWidth wp: Int, bias: UnsafePointer<Float>?,
                       into out: UnsafeMutablePointer<Float>) {
        if layout == .channelsLast {
            for r in 0..<h {
                let src = y + r * wp * c, dst = out + r * w * c
                if let bias {
                    for px in 0..<w {
                        for ch in 0..<c { dst[px * c + ch] = src[px * c + ch] + bias[ch] }
                    }
                } else {
                    dst.update(from: src, count: w * c)
                }
            }
            return
        }
        let plane = h * w, blocked = plane / 8 * 8
        var p = 0, oh = 0, ow = 0
        while p < blocked {
            var row = oh, col = ow
            func next() -> UnsafePointer<Float> {
                let s = y + (row * wp + col) * c
                col += 1
                if col == w { col = 0; row += 1 }
                return s
            }
            let s0 = next(), s1 = next(), s2 = next(), s3 = next(), s4 = next(), s5 = next(), s6 = next(), s7 = next()
            (oh, ow) = (row, col)
            var ch = 0
            while ch < c {
                let t = transpose8x8(load8(s0 + ch), load8(s1 + ch), load8(s2 + ch), load8(s3 + ch),
                                     load8(s4 + ch), load8(s5 + ch), load8(s6 + ch), load8(s7 + ch))
                let d = out + ch * plane + p
                if let bias {
                    store8(t.0 + bias[ch], d); store8(t.1 + bias[ch + 1], d + plane)
                    store8(t.2 + bias[ch + 2], d + 2 * plane); store8(t.3 + bias[ch + 3], d + 3 * plane)
                    store8(t.4 + bias[ch + 4], d + 4 * plane); store8(t.5 + bias[ch + 5], d + 5 * plane)
                    store8(t.6 + bias[ch + 6], d + 6 * plane); store8(t.7 + bias[ch + 7], d + 7 * plane)
                } else {
                    store8(t.0, d); store8(t.1, d + plane); store8(t.2, d + 2 * plane); store8(t.3, d + 3 * plane)
                    store8(t.4, d + 4 * plane); store8(t.5, d + 5 * plane); store8(t.6, d + 6 * plane); store8(t.7, d + 7 * plane)
                }
                ch += 8
            }
            p += 8
        }
        while p < plane {
            let src = y + (oh * wp + ow) * c
            for ch in 0..<c { out[ch * plane + p] = src[ch] + (bias?[ch] ?? 0) }
            p += 1; ow += 1
            if ow == w { ow = 0; oh += 1 }
        }
    }
}

/// The transpose of the 8×8 matrix whose rows are r0…r7. Splitting the 64 values into evens and odds moves the
/// bits of an index (row bits, column bits) one place to the right, cyclically; three splits swap rows and columns.
@inline(__always)
private func transpose8x8(_ r0: SIMD8<Float>, _ r1: SIMD8<Float>, _ r2: SIMD8<Float>, _ r3: SIMD8<Float>,
                          _ r4: SIMD8<Float>, _ r5: SIMD8<Float>, _ r6: SIMD8<Float>, _ r7: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    @inline(__always)
    func split(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        (SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf))
    }
    var (a0, a4) = split(r0, r1), (a1, a5) = split(r2, r3), (a2, a6) = split(r4, r5), (a3, a7) = split(r6, r7)
    let (b0, b4) = split(a0, a1), (b1, b5) = split(a2, a3), (b2, b6) = split(a4, a5), (b3, b7) = split(a6, a7)
    (a0, a4) = split(b0, b1); (a1, a5) = split(b2, b3); (a2, a6) = split(b4, b5); (a3, a7) = split(b6, b7)
    return (a0, a1, a2, a3, a4, a5, a6, a7)
}

/// The buffers of one convolution's channel-last path: images per worker thread, partial gradients per chunk of
/// samples (`LayerThreads`), and the repacked kernels. Allocated when the image size, worker or chunk count
/// changes, not in a steady-state step; the padded images' borders and the unused output pixels are zeroed then and
/// never written again.
final class ChannelLastScratch: @unchecked Sendable {
    private(set) var workers = 0
    private(set) var chunks = 0
    private(set) var geometry: ChannelLastConvolution.Geometry?
    /// Per worker: the padded input [paddedPixels][Cin]; the output gradient [paddedPixels][Cout] (padded for a
    /// stride-1 'same' convolution, else as the output's pixels); a product [pixels][max(Cin, Cout)]; the padded
    /// input gradient [paddedPixels][Cin] a scatter sums into.
    private(set) var paddedInput: [UnsafeMutablePointer<Float>] = []
    private(set) var outputGradient: [UnsafeMutablePointer<Float>] = []
    private(set) var product: [UnsafeMutablePointer<Float>] = []
    private(set) var inputGradient: [UnsafeMutablePointer<Float>] = []
    /// Per chunk: partial weight [K·K][Cin][Cout] and bias [Cout] gradients.
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

    /// Makes buffers for `workers` threads and `chunks` chunks of samples of `geometry`, unless they exist.
    func prepare(workers: Int, chunks: Int, geometry g: ChannelLastConvolution.Geometry, inChannels cin: Int,
                 outChannels cout: Int) {
        guard workers != self.workers || chunks != self.chunks || g != geometry else { return }
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
        weightGradient = (0..<chunks).map { _ in zeroed(sizes.weights) }
        biasGradient = (0..<chunks).map { _ in zeroed(sizes.bias) }
        self.workers = workers
        self.chunks = chunks
        geometry = g
    }
}
