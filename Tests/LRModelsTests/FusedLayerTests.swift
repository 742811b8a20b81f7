import Testing
import LRModels
import LRTensor

/// The fused and grouped fast paths compute what the plain layers compute.
@Suite("Fused and grouped layers")
struct FusedLayerTests {
    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test(arguments: [true, false])
    func batchNormWithFusedReLUIsBatchNormThenReLU(training: Bool) {
        let fused = BatchNorm2d(name: "bn", channels: 3, fusedReLU: true)
        let plain = BatchNorm2d(name: "bn", channels: 3)
        let relu = ReLU()
        for bn in [fused, plain] {
            bn.weight.value.storage = [0.5, 1.5, -1]
            bn.bias.value.storage = [0.1, -0.2, 0.3]
            bn.runningMean.storage = [0.2, -0.1, 0]
            bn.runningVar.storage = [1.5, 0.7, 2]
        }
        let x = randomTensor([4, 3, 5, 5], seed: 31, scale: 2)
        let y = fused.forward(x, training: training).storage
        let expected = relu.forward(plain.forward(x, training: training), training: training).storage
        #expect(y == expected)
        let dy = randomTensor([4, 3, 5, 5], seed: 32)
        let dx = fused.backward(dy, needsInputGradient: true).storage
        let dxPlain = plain.backward(relu.backward(dy, needsInputGradient: true), needsInputGradient: true).storage
        #expect(close(dx, dxPlain))
        #expect(close(fused.weight.grad.storage, plain.weight.grad.storage))
        #expect(close(fused.bias.grad.storage, plain.bias.grad.storage))
        #expect(fused.batchesTracked.storage == [training ? 1 : 0])
    }

    /// One sample per sgemm (a tiny workspace) and the whole batch in one sgemm give the same convolution.
    @Test(arguments: [(stride: 1, padding: 1, kernel: 3), (stride: 2, padding: 0, kernel: 1)])
    func groupedAndPerSampleConvolutionsAgree(geometry: (stride: Int, padding: Int, kernel: Int)) {
        var rngA = Xoshiro256(seed: 40), rngB = Xoshiro256(seed: 40)
        let perSample = Conv2d(name: "c", inChannels: 3, outChannels: 5, kernel: geometry.kernel, stride: geometry.stride,
                               padding: geometry.padding, workspace: ConvWorkspace(columnBudget: 1), rng: &rngA)
        let grouped = Conv2d(name: "c", inChannels: 3, outChannels: 5, kernel: geometry.kernel, stride: geometry.stride,
                             padding: geometry.padding, workspace: ConvWorkspace(columnBudget: 1 << 20), rng: &rngB)
        let x = randomTensor([6, 3, 7, 6], seed: 41)
        let y1 = perSample.forward(x, training: true), y2 = grouped.forward(x, training: true)
        #expect(y1.shape == y2.shape && close(y1.storage, y2.storage))
        let dy = randomTensor(y1.shape, seed: 42)
        let dx1 = perSample.backward(dy, needsInputGradient: true).storage
        let dx2 = grouped.backward(dy, needsInputGradient: true).storage
        #expect(close(dx1, dx2))
        #expect(close(perSample.weight.grad.storage, grouped.weight.grad.storage, tolerance: 1e-4))
        #expect(close(perSample.bias!.grad.storage, grouped.bias!.grad.storage, tolerance: 1e-4))
    }

    /// The channel-last direct kernels compute what im2col + sgemm computes: output, input and parameter gradients,
    /// on one worker and on several (BLAS threads), for the flipped-kernel input gradient (stride 1, 'same') and the
    /// scatter (the rest), with images whose rows do not fill whole pixel blocks.
    @Test(arguments: [
        ConvCase(cin: 16, cout: 16, h: 7, w: 6, kernel: 3, stride: 1, padding: 1, threads: 1),
        ConvCase(cin: 16, cout: 32, h: 6, w: 5, kernel: 3, stride: 1, padding: 1, threads: 2),
        ConvCase(cin: 32, cout: 16, h: 5, w: 7, kernel: 3, stride: 1, padding: 1, threads: 3),
        ConvCase(cin: 16, cout: 32, h: 7, w: 6, kernel: 3, stride: 2, padding: 1, threads: 2),
        ConvCase(cin: 16, cout: 32, h: 6, w: 7, kernel: 1, stride: 2, padding: 0, threads: 2),
        ConvCase(cin: 16, cout: 16, h: 6, w: 6, kernel: 3, stride: 1, padding: 0, threads: 1),
        ConvCase(cin: 16, cout: 16, h: 9, w: 8, kernel: 3, stride: 2, padding: 2, threads: 2),
        ConvCase(cin: 16, cout: 32, h: 5, w: 6, kernel: 3, stride: 2, padding: 1, threads: 2),
        ConvCase(cin: 16, cout: 32, h: 5, w: 6, kernel: 1, stride: 2, padding: 0, threads: 1),
        ConvCase(cin: 32, cout: 32, h: 3, w: 3, kernel: 3, stride: 1, padding: 1, threads: 2),
    ])
    func channelLastConvolutionMatchesIm2col(c: ConvCase) {
        let before = BLAS.computeThreads
        BLAS.setThreads(c.threads)
        defer { BLAS.setThreads(before) }
        var rngA = Xoshiro256(seed: 50), rngB = Xoshiro256(seed: 50)
        let direct = Conv2d(name: "c", inChannels: c.cin, outChannels: c.cout, kernel: c.kernel, stride: c.stride,
                            padding: c.padding, rng: &rngA)
        let reference = Conv2d(name: "c", inChannels: c.cin, outChannels: c.cout, kernel: c.kernel, stride: c.stride,
                               padding: c.padding, algorithm: .im2col, rng: &rngB)
        for step in 0..<2 {  // twice: the second step reuses the buffers (zero borders, cleared partial sums)
            let x = randomTensor([5, c.cin, c.h, c.w], seed: 51 + UInt64(step))
            let y1 = direct.forward(x, training: true), y2 = reference.forward(x, training: true)
            #expect(y1.shape == y2.shape && close(y1.storage, y2.storage, tolerance: 1e-4))
            let dy = randomTensor(y1.shape, seed: 53 + UInt64(step))
            let dx1 = direct.backward(dy, needsInputGradient: true).storage
            let dx2 = reference.backward(dy, needsInputGradient: true).storage
            #expect(close(dx1, dx2, tolerance: 1e-4))
            #expect(close(direct.weight.grad.storage, reference.weight.grad.storage, tolerance: 1e-4))
            #expect(close(direct.bias!.grad.storage, reference.bias!.grad.storage, tolerance: 1e-4))
        }
    }

    /// Chunks of samples, not threads, decide how the weight gradient is summed: any thread count gives the same
    /// numbers bit for bit (a run resumed with another --threads goes on exactly).
    @Test func channelLastResultsDoNotDependOnTheThreadCount() {
        let before = BLAS.computeThreads
        defer { BLAS.setThreads(before) }
        let x = randomTensor([21, 16, 6, 5], seed: 60), dy = randomTensor([21, 32, 3, 3], seed: 61)
        var results: [[[Float]]] = []
        for threads in [1, 2, 3] {
            BLAS.setThreads(threads)
            var rng = Xoshiro256(seed: 62)
            let conv = Conv2d(name: "c", inChannels: 16, outChannels: 32, kernel: 3, stride: 2, padding: 1, rng: &rng)
            let y = conv.forward(x, training: true).storage
            let dx = conv.backward(dy, needsInputGradient: true).storage
            results.append([y, dx, conv.weight.grad.storage, conv.bias!.grad.storage])
        }
        #expect(results[0] == results[1] && results[0] == results[2])
    }
}

struct ConvCase: Sendable, CustomTestStringConvertible {
    let cin: Int, cout: Int, h: Int, w: Int, kernel: Int, stride: Int, padding: Int, threads: Int
    var testDescription: String {
        "\(cin)→\(cout) \(kernel)x\(kernel)/\(stride) pad \(padding) on \(h)x\(w), \(threads) thread(s)"
    }
}
