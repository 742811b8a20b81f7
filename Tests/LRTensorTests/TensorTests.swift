import Testing
import LRTensor

@Test func gemmMatchesHandComputedProduct() {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
    let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
    let b = Tensor(shape: [2, 2], storage: [5, 6, 7, 8])
    let c = Tensor(shape: [2, 2])
    a.withPointer { pa in b.withPointer { pb in c.withPointer { pc in
        BLAS.gemm(m: 2, n: 2, k: 2, a: pa, b: pb, c: pc)
    } } }
    #expect(c.storage == [19, 22, 43, 50])
    let ct = Tensor(shape: [2, 2])
    // Aᵀ · B = [1 3; 2 4] · [5 6; 7 8] = [26 30; 38 44]
    a.withPointer { pa in b.withPointer { pb in ct.withPointer { pc in
        BLAS.gemm(transA: true, m: 2, n: 2, k: 2, a: pa, b: pb, c: pc)
    } } }
    #expect(ct.storage == [26, 30, 38, 44])
}

@Test func seededGeneratorIsReproducibleAndPermutes() {
    var g1 = Xoshiro256(seed: 42), g2 = Xoshiro256(seed: 42)
    #expect((0..<10).map { _ in g1.next() } == (0..<10).map { _ in g2.next() })
    var g3 = Xoshiro256(seed: 7)
    let p = g3.permutation(1000)
    #expect(Set(p).count == 1000)
    #expect(p != (0..<1000).map { Int32($0) })
    var g4 = Xoshiro256(seed: 1)
    let xs = (0..<20000).map { _ in g4.nextFloat() }
    #expect(xs.allSatisfy { $0 >= 0 && $0 < 1 })
    let mean = xs.reduce(0, +) / Float(xs.count)
    #expect(abs(mean - 0.5) < 0.01)
}

@Test func resizeReusesStorageAndReshapeKeepsValues() {
    let t = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
    t.reshape([3, 2])
    #expect(t.shape == [3, 2])
    #expect(t.storage == [1, 2, 3, 4, 5, 6])
    t.resize([6])
    #expect(t.storage == [1, 2, 3, 4, 5, 6])
    t.resize([4])
    #expect(t.count == 4)
}

@Test func sumOfSquaresCoversTheTailAndScaleMultiplies() {
    // 37 elements: four 16-wide blocks do not fit, so both the vector loop and the scalar tail run. Halves square
    // and add exactly in any order, so the sum is exact.
    let values = (0..<37).map { Float($0) * 0.5 - 3 }
    let t = Tensor(shape: [37], storage: values)
    #expect(t.sumOfSquares == values.reduce(0.0) { $0 + Double($1) * Double($1) })
    #expect(Tensor(shape: [0]).sumOfSquares == 0)
    t.scale(by: 2)
    #expect(t.storage == values.map { $0 * 2 })
}
