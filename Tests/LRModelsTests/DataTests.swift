#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Testing
import LRModels
import LRTensor

/// A fresh temporary folder per test.
func makeTempDirectory() -> String {
    var template = Array("/tmp/lrmodels-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

/// Writes a tiny MNIST-format dataset: `train` and `test` images of rows×cols with pixel (i + j) % 256 and labels i % 4.
@discardableResult
func writeTinyDataset(in dir: String, gzip: Bool, train: Int = 10, test: Int = 6, rows: Int = 4, cols: Int = 3) -> [String: String] {
    var paths: [String: String] = [:]
    let ext = gzip ? ".gz" : ""
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let pixels = (0..<(n * rows * cols)).map { UInt8(($0 * 7 + n) % 256) }
        let labels = (0..<n).map { UInt8($0 % 4) }
        let imagePath = "\(dir)/\(prefix)-images-idx3-ubyte\(ext)", labelPath = "\(dir)/\(prefix)-labels-idx1-ubyte\(ext)"
        IDX.writeFile(imagePath, bytes: IDX.encode(dims: [n, rows, cols], values: pixels), gzip: gzip)
        IDX.writeFile(labelPath, bytes: IDX.encode(dims: [n], values: labels), gzip: gzip)
        paths[prefix + "-images"] = imagePath
        paths[prefix + "-labels"] = labelPath
    }
    return paths
}

func readBytes(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, f) }
        if n == 0 { break }
        out += buffer[0..<n]
    }
    return out
}

/// Catches the `DataError` an expression throws (nil when it does not throw one).
func dataError(_ body: () throws -> Void) -> DataError? {
    do { try body() } catch let error as DataError { return error } catch { return nil }
    return nil
}

@Suite("Data")
struct DataTests {
    @Test(arguments: [false, true])
    func loadsTinyIDXFolders(gzip: Bool) throws {
        let dir = makeTempDirectory()
        writeTinyDataset(in: dir, gzip: gzip)
        let data = try DataLoader.load(spec: dir)
        #expect(data.notice == nil && data.source == dir)
        let d = data.dataset
        #expect(d.sampleShape == [1, 4, 3])
        #expect(d.train.count == 10 && d.test.count == 6)
        #expect(d.classCount == 4)
        #expect(d.train.labels == (0..<10).map { Int32($0 % 4) })
        #expect(d.train.images.count == 10 * 12)
        #expect(d.train.images[5] == Float((5 * 7 + 10) % 256) / 255)
        #expect(d.test.images[13] == Float((13 * 7 + 6) % 256) / 255)
        #expect(d.train.images.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func rawAndGzipReadTheSameBytes() throws {
        let raw = makeTempDirectory(), gz = makeTempDirectory()
        let rawPaths = writeTinyDataset(in: raw, gzip: false), gzPaths = writeTinyDataset(in: gz, gzip: true)
        let a = try IDX.read(rawPaths["train-images"]!), b = try IDX.read(gzPaths["train-images"]!)
        #expect(a.dims == [10, 4, 3] && a.bytes == b.bytes && a.dataOffset == 16)
        #expect(readBytes(gzPaths["train-images"]!).prefix(2) == [0x1f, 0x8b])
    }

    @Test func largerGzipFilesGrowTheirBuffer() throws {
        // Bigger than the first read and compressing well, so the size hint and growth are both exercised.
        let dir = makeTempDirectory()
        let values = (0..<300_000).map { UInt8($0 % 251) }
        IDX.writeFile("\(dir)/big.gz", bytes: IDX.encode(dims: [300, 1000], values: values), gzip: true)
        let f = try IDX.read("\(dir)/big.gz")
        #expect(f.dims == [300, 1000] && Array(f.bytes[f.dataOffset...]) == values)
    }

    @Test(arguments: [false, true])
    func truncatedFileIsOneLineError(gzip: Bool) throws {
        let dir = makeTempDirectory()
        let paths = writeTinyDataset(in: dir, gzip: false, train: 50, rows: 28, cols: 28)
        let path = paths["train-images"]!
        let full = readBytes(path)
        let cut = Array(full.prefix(16 + 1200))
        let target = gzip ? path + ".gz" : path
        if gzip { unlink(path) }
        IDX.writeFile(target, bytes: cut, gzip: gzip)
        let error = dataError { _ = try DataLoader.load(spec: dir) }
        #expect(error?.kind == .truncated)
        let text = error?.description ?? ""
        #expect(text.hasPrefix(target + ": truncated: header says 50x28x28 images (39200 bytes) but the file holds 1200"), "\(text)")
        #expect(text.contains("re-install dataset-fashion-mnist"))
        #expect(!text.contains("\n"))
    }

    @Test func truncatedGzipStreamIsReported() throws {
        let dir = makeTempDirectory()
        let values = (0..<20_000).map { _ in UInt8.random(in: 0...255) }
        IDX.writeFile("\(dir)/full.gz", bytes: IDX.encode(dims: [20, 1000], values: values), gzip: true)
        let compressed = readBytes("\(dir)/full.gz")
        IDX.writeFile("\(dir)/cut.gz", bytes: Array(compressed.prefix(compressed.count / 2)), gzip: false)
        let error = dataError { _ = try IDX.read("\(dir)/cut.gz") }
        #expect(error?.kind == .truncated, "\(String(describing: error))")
        #expect(error?.description.contains("gzip stream ends early") == true)
    }

    /// The header bounds what is decompressed: a stream holding more than it declares is refused where the
    /// declared size ends, and a header declaring more than lrtop reads is refused before anything is allocated.
    @Test func gzipHoldingMoreThanItsHeaderDeclaresIsRefused() {
        let dir = makeTempDirectory()
        IDX.writeFile("\(dir)/more.gz", bytes: IDX.encode(dims: [10], values: Array(repeating: 1, count: 10 + 5000)), gzip: true)
        let more = dataError { _ = try IDX.read("\(dir)/more.gz") }
        #expect(more?.kind == .badFormat)
        #expect(more?.description.hasPrefix("\(dir)/more.gz: the gzip stream holds more than the 10 labels (10 bytes) its IDX header declares; lrtop stopped decompressing there") == true,
                "\(String(describing: more))")
        IDX.writeFile("\(dir)/huge.gz", bytes: IDX.encode(dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], values: []), gzip: true)
        let huge = dataError { _ = try IDX.read("\(dir)/huge.gz") }
        #expect(huge?.description.hasPrefix("\(dir)/huge.gz: IDX header declares 4294967295x4294967295x4294967295 images, more than lrtop reads (4 GiB at most)") == true,
                "\(String(describing: huge))")
        IDX.writeFile("\(dir)/big.gz", bytes: IDX.encode(dims: [100_000, 28, 28, 28], values: []), gzip: true)
        let big = dataError { _ = try IDX.read("\(dir)/big.gz") }
        #expect(big?.kind == .truncated, "under the cap, a short file is the usual truncation: \(String(describing: big))")
        #expect([more, huge, big].allSatisfy { !($0?.description.contains("\n") ?? true) })
    }

    @Test func corruptGzipIsReported() {
        let dir = makeTempDirectory()
        IDX.writeFile("\(dir)/bad.gz", bytes: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3] + Array(repeating: 0xFF, count: 64), gzip: false)
        let error = dataError { _ = try IDX.read("\(dir)/bad.gz") }
        #expect(error?.kind == .badFormat || error?.kind == .truncated, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("\(dir)/bad.gz: ") == true)
    }

    @Test func badMagicWrongTypeAndWrongRank() {
        let dir = makeTempDirectory()
        IDX.writeFile("\(dir)/text", bytes: Array("hello, not an IDX file".utf8), gzip: false)
        let magic = dataError { _ = try IDX.read("\(dir)/text") }
        #expect(magic?.kind == .badFormat && magic?.description.contains("not an IDX file") == true)

        var floats = IDX.encode(dims: [2, 2], values: Array(repeating: 0, count: 16))
        floats[2] = 0x0D
        IDX.writeFile("\(dir)/floats", bytes: floats, gzip: true)
        let dtype = dataError { _ = try IDX.read("\(dir)/floats") }
        #expect(dtype?.kind == .unsupportedType && dtype?.description.contains("float32") == true)

        IDX.writeFile("\(dir)/short", bytes: [0, 0], gzip: false)
        #expect(dataError { _ = try IDX.read("\(dir)/short") }?.kind == .truncated)

        IDX.writeFile("\(dir)/long", bytes: IDX.encode(dims: [3], values: [1, 2, 3, 4]), gzip: false)
        #expect(dataError { _ = try IDX.read("\(dir)/long") }?.kind == .badFormat)

        // Images where labels belong.
        writeTinyDataset(in: dir, gzip: false)
        IDX.writeFile("\(dir)/train-labels-idx1-ubyte", bytes: IDX.encode(dims: [10, 1, 1], values: Array(repeating: 1, count: 10)), gzip: false)
        let rank = dataError { _ = try DataLoader.load(spec: dir) }
        #expect(rank?.kind == .mismatch && rank?.description.contains("expected a list of labels") == true)
    }

    @Test func labelImageCountMismatch() {
        let dir = makeTempDirectory()
        writeTinyDataset(in: dir, gzip: true)
        IDX.writeFile("\(dir)/t10k-labels-idx1-ubyte.gz", bytes: IDX.encode(dims: [5], values: [0, 1, 2, 3, 0]), gzip: true)
        let error = dataError { _ = try DataLoader.load(spec: dir) }
        #expect(error?.kind == .mismatch)
        #expect(error?.description.contains("holds 5 labels but t10k-images-idx3-ubyte.gz holds 6 images") == true, "\(String(describing: error))")
    }

    @Test func missingFilesAndFolders() {
        let dir = makeTempDirectory()
        writeTinyDataset(in: dir, gzip: false)
        unlink("\(dir)/t10k-images-idx3-ubyte")
        let missingFile = dataError { _ = try DataLoader.load(spec: dir) }
        #expect(missingFile?.kind == .missing && missingFile?.description.contains("t10k-images-idx3-ubyte[.gz] not found") == true)
        let missingDir = dataError { _ = try DataLoader.load(spec: dir + "/nope") }
        #expect(missingDir?.kind == .missing && missingDir?.description.hasPrefix(dir + "/nope: no such folder") == true)
        let notDir = dataError { _ = try DataLoader.load(spec: dir + "/train-labels-idx1-ubyte") }
        #expect(notDir?.kind == .unreadable)
        #expect(dataError { _ = try IDX.read(dir + "/absent.gz") }?.kind == .missing)
        let unknown = dataError { _ = try DataLoader.load(spec: "synthetic:moons") }
        #expect(unknown?.kind == .unknownSpec && unknown?.description.contains("synthetic:spirals") == true)
        for e in [missingFile, missingDir, notDir, unknown] { #expect(e?.description.contains("\n") == false) }
    }

    @Test func missingDefaultFolderFallsBackToSpirals() throws {
        let absent = makeTempDirectory() + "/fashion-mnist"
        let data = try DataLoader.load(spec: nil, defaultDirectory: absent)
        #expect(data.dataset.name == "spirals" && data.source == "synthetic:spirals")
        #expect(data.notice == "Fashion-MNIST not found in \(absent): install it with 'apt-get install dataset-fashion-mnist' or pass --data DIR; training on the built-in synthetic spirals dataset instead")
        // A default folder that exists but is broken is an error, not a fallback.
        let broken = makeTempDirectory()
        #expect(dataError { _ = try DataLoader.load(spec: nil, defaultDirectory: broken) }?.kind == .missing)
    }

    @Test func spiralsAreDeterministicAndShaped() throws {
        let a = try DataLoader.load(spec: "synthetic:spirals").dataset, b = Spirals.make()
        #expect(a.name == "spirals" && a.sampleShape == [2] && a.classCount == 3)
        #expect(a.train.count == 6000 && a.test.count == 1500)
        #expect(a.train.images == b.train.images && a.train.labels == b.train.labels)
        #expect(a.train.images != a.test.images.prefix(3000).map { $0 } + a.test.images)
        #expect(Set(a.train.labels) == [0, 1, 2])
        #expect(a.train.images.allSatisfy { abs($0) <= 1 })
        #expect(Spirals.make(seed: 1).train.images != a.train.images)
    }

    @Test func normalisation() throws {
        let d = Spirals.make(trainCount: 300, testCount: 30)
        let (mean, std) = d.trainStatistics()
        let n = d.normalized(mean: mean, std: std)
        let (m2, s2) = n.trainStatistics()
        #expect(abs(m2) < 1e-5 && abs(s2 - 1) < 1e-4)
        let dir = makeTempDirectory()
        writeTinyDataset(in: dir, gzip: false)
        let normalized = try DataLoader.load(spec: dir, normalize: true).dataset
        #expect(abs(normalized.trainStatistics().mean) < 1e-5)
    }

    @Test func batcherOrderIsAPureFunctionOfSeedAndEpoch() throws {
        let split = DataSplit(images: (0..<(103 * 2)).map { Float($0) }, labels: (0..<103).map { Int32($0) })
        let a = try Batcher(split: split, sampleShape: [2], batchSize: 10, seed: 5)
        let b = try Batcher(split: split, sampleShape: [2], batchSize: 10, seed: 5)
        #expect(a.stepsPerEpoch == 10)  // 103 / 10, the partial batch dropped
        var epoch0: [Int32] = []
        for k in 0..<10 {
            let position = a.next()
            #expect(position.epoch == 0 && position.batchIndex == k)
            b.next()
            #expect(a.labels == b.labels && a.input.storage == b.input.storage)
            // Inputs travel with their labels.
            for i in 0..<10 { #expect(a.input.storage[2 * i] == Float(2 * a.labels[i])) }
            epoch0 += a.labels
        }
        #expect(Set(epoch0).count == 100)
        #expect(epoch0 == Array(Batcher.permutation(count: 103, seed: 5, epoch: 0).prefix(100)))
        #expect(a.epoch == 1 && a.batchIndex == 0)
        let next = a.next()
        #expect(next.epoch == 1 && next.batchIndex == 0)
        #expect(Batcher.permutation(count: 103, seed: 5, epoch: 1) != Batcher.permutation(count: 103, seed: 5, epoch: 0))
        #expect(Batcher.permutation(count: 103, seed: 6, epoch: 0) != Batcher.permutation(count: 103, seed: 5, epoch: 0))
        #expect(a.input.shape == [10, 2])
    }

    @Test func batcherResumesExactlyAfterSeek() throws {
        let split = DataSplit(images: (0..<50).map { Float($0) }, labels: (0..<50).map { Int32($0) })
        let continuous = try Batcher(split: split, sampleShape: [1], batchSize: 7, seed: 9)
        var reference: [[Int32]] = []
        for _ in 0..<20 { continuous.next(); reference.append(continuous.labels) }
        let resumed = try Batcher(split: split, sampleShape: [1], batchSize: 7, seed: 9)
        try resumed.seek(epoch: 1, batchIndex: 3)  // 7 steps per epoch: batch 10 overall
        for k in 10..<20 { resumed.next(); #expect(resumed.labels == reference[k]) }
        #expect(throws: DataError.self) { try resumed.seek(epoch: 0, batchIndex: 8) }
        try resumed.seek(epoch: 2, batchIndex: 7)
        #expect(resumed.epoch == 3 && resumed.batchIndex == 0)
        #expect(throws: DataError.self) { try Batcher(split: split, sampleShape: [1], batchSize: 51, seed: 0) }
        #expect(throws: DataError.self) { try Batcher(split: split, sampleShape: [1], batchSize: 0, seed: 0) }
    }

    @Test func evalBatchesCoverTheSplitInOrder() {
        let split = DataSplit(images: (0..<(25 * 3)).map { Float($0) }, labels: (0..<25).map { Int32($0) })
        var sizes: [Int] = [], labels: [Int32] = [], firsts: [Float] = []
        for batch in EvalBatches(split: split, sampleShape: [3], chunkSize: 10) {
            sizes.append(batch.input.shape[0])
            #expect(batch.input.shape == [batch.labels.count, 3])
            labels += batch.labels
            firsts.append(batch.input.storage[0])
        }
        #expect(sizes == [10, 10, 5] && labels == (0..<25).map { Int32($0) } && firsts == [0, 30, 60])
    }

    static let fashionDirectory = "/usr/share/datasets/fashion-mnist"
    static var fashionPresent: Bool { access(fashionDirectory, F_OK) == 0 }

    @Test("Fashion-MNIST from the system package",
          .enabled(if: fashionPresent, "skipped: \(fashionDirectory) is absent (apt-get install dataset-fashion-mnist)"))
    func fashionMNIST() throws {
        let data = try DataLoader.load(spec: nil)
        #expect(data.notice == nil)
        let d = data.dataset
        #expect(d.name == "Fashion-MNIST")
        #expect(d.train.count == 60_000 && d.test.count == 10_000)
        #expect(d.sampleShape == [1, 28, 28] && d.classCount == 10)
        #expect(d.train.images.count == 60_000 * 784 && d.test.images.count == 10_000 * 784)
        #expect(d.train.labels.allSatisfy { $0 >= 0 && $0 < 10 } && d.test.labels.allSatisfy { $0 >= 0 && $0 < 10 })
        #expect(Set(d.train.labels).count == 10)
        #expect(d.train.images.min() == 0 && d.train.images.max() == 1)
        #expect(d.test.images.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Fashion-MNIST's well-known pixel statistics.
        let (mean, std) = d.trainStatistics()
        #expect(abs(mean - 0.2860) < 1e-3 && abs(std - 0.3530) < 1e-3)
    }
}
