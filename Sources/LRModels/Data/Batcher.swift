import LRTensor

/// Serves shuffled training batches, PyTorch-style: a fresh permutation per epoch, the last partial batch dropped
/// (`stepsPerEpoch = count / batchSize`).
///
/// The permutation of epoch e is a pure function of (seed, e), so a checkpoint only needs `(epoch, batchIndex)` to
/// continue with the exact same data order (`seek`).
///
///     input: [B, ...sampleShape] (preallocated, refilled by `next()`)   labels: [B]
public final class Batcher: @unchecked Sendable {
    public let split: DataSplit
    public let sampleShape: [Int]
    public let batchSize: Int
    public let seed: UInt64
    public let stepsPerEpoch: Int
    /// The current batch, refilled in place by `next()`.
    public let input: Tensor
    public private(set) var labels: [Int32]
    /// Position of the batch the next `next()` serves.
    public private(set) var epoch = 0
    public private(set) var batchIndex = 0

    private let sampleSize: Int
    private var order: [Int32] = []
    private var orderEpoch = -1

    /// Throws `DataError` when the batch size is not positive or exceeds the split.
    public init(split: DataSplit, sampleShape: [Int], batchSize: Int, seed: UInt64) throws {
        guard batchSize > 0 else { throw DataError(.mismatch, "batch size must be positive, got \(batchSize)") }
        guard batchSize <= split.count else {
            throw DataError(.mismatch, "batch size \(batchSize) is larger than the training split (\(split.count) samples): use a batch size of at most \(split.count)")
        }
        self.split = split
        self.sampleShape = sampleShape
        self.batchSize = batchSize
        self.seed = seed
        self.sampleSize = sampleShape.reduce(1, *)
        precondition(split.images.count == split.count * sampleSize, "Batcher: split does not hold samples of \(sampleShape)")
        stepsPerEpoch = split.count / batchSize
        input = Tensor(shape: [batchSize] + sampleShape)
        labels = [Int32](repeating: 0, count: batchSize)
    }

    /// The sample order of `epoch` for a split of `count` samples.
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
        var rng = Xoshiro256(seed: seed &+ UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15)
        return rng.permutation(count)
    }

    /// Training batches of `dataset`.
    public convenience init(dataset: Dataset, batchSize: Int, seed: UInt64) throws {
        try self.init(split: dataset.train, sampleShape: dataset.sampleShape, batchSize: batchSize, seed: seed)
    }

    /// Moves to batch `batchIndex` of `epoch` (a resumed run continues where its checkpoint left off).
    /// `batchIndex == stepsPerEpoch` means the start of the next epoch. Throws when the position does not exist
    /// (a checkpoint from a run with another batch size or dataset).
    public func seek(epoch: Int, batchIndex: Int) throws {
        guard epoch >= 0 && batchIndex >= 0 && batchIndex <= stepsPerEpoch else {
            throw DataError(.mismatch, "cannot resume at epoch \(epoch) batch \(batchIndex): an epoch has \(stepsPerEpoch) batches of \(batchSize) — was the checkpoint made with another batch size or dataset?")
        }
        self.epoch = epoch
        self.batchIndex = batchIndex
        if batchIndex == stepsPerEpoch { self.epoch += 1; self.batchIndex = 0 }
    }

    /// Gathers the next batch into `input` and `labels` and advances (into the next epoch after the last batch).
    /// Returns the position of the batch it served.
    @discardableResult
    public func next() -> (epoch: Int, batchIndex: Int) {
        if orderEpoch != epoch {
            order = Batcher.permutation(count: split.count, seed: seed, epoch: epoch)
            orderEpoch = epoch
        }
        let served = (epoch, batchIndex)
        let start = batchIndex * batchSize, size = sampleSize, b = batchSize
        split.images.withUnsafeBufferPointer { src in
            split.labels.withUnsafeBufferPointer { srcLabels in
                order.withUnsafeBufferPointer { ord in
                    input.withPointer { dst in
                        labels.withUnsafeMutableBufferPointer { dstLabels in
                            for i in 0..<b {
                                let j = Int(ord[start + i])
                                (dst + i * size).update(from: src.baseAddress! + j * size, count: size)
                                dstLabels[i] = srcLabels[j]
                            }
                        }
                    }
                }
            }
        }
        batchIndex += 1
        if batchIndex == stepsPerEpoch { epoch += 1; batchIndex = 0 }
        return served
    }
}

/// The test split in order, in chunks (the last may be smaller), for evaluation.
///
///     for batch in EvalBatches(split: data.test, sampleShape: data.sampleShape) { model.forward(batch.input, …) }
///
/// `input` is one tensor reused for every chunk: read it before asking for the next.
public struct EvalBatches: Sequence, IteratorProtocol {
    public let split: DataSplit
    public let sampleShape: [Int]
    public let chunkSize: Int
    private var position = 0
    private let input = Tensor(shape: [0])

    public init(split: DataSplit, sampleShape: [Int], chunkSize: Int = 1000) {
        precondition(chunkSize > 0, "EvalBatches: chunk size must be positive")
        self.split = split
        self.sampleShape = sampleShape
        self.chunkSize = chunkSize
    }

    public mutating func next() -> (input: Tensor, labels: [Int32])? {
        guard position < split.count else { return nil }
        let n = Swift.min(chunkSize, split.count - position)
        let size = sampleShape.reduce(1, *)
        if input.shape.first != n { input.resize([n] + sampleShape) }
        let start = position
        split.images.withUnsafeBufferPointer { src in
            input.withPointer { dst in dst.update(from: src.baseAddress! + start * size, count: n * size) }
        }
        position += n
        return (input, Array(split.labels[start..<(start + n)]))
    }
}
