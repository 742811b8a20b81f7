#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LRTensor

/// The outcome of a loss evaluation over a batch.
public struct LossResult: Sendable, Equatable {
    /// Mean loss over the batch.
    public var loss: Double
    /// How many rows have the label as their top-1 prediction (the first maximum on a tie).
    public var correct: Int
    /// Rows in the batch.
    public var count: Int
    public init(loss: Double, correct: Int, count: Int) { self.loss = loss; self.correct = correct; self.count = count }
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
}

/// Softmax cross-entropy, mean over the batch, with optional label smoothing as PyTorch's
/// `F.cross_entropy(logits, y, label_smoothing=ε)`: the target is q = (1 − ε)·onehot(y) + ε/C.
///
///     logits, p = softmax(logits), dlogits: [B, C]     labels: [B] in 0..<C
///     loss = 1/B · Σ_b Σ_c −q_bc · log p_bc
///     dlogits = (p − q) / B
public final class SoftmaxCrossEntropy: @unchecked Sendable {
    public var labelSmoothing: Float
    /// d(mean loss)/d(logits), written by `compute(…, computeGradient: true)`; owned and reused.
    public let gradLogits = Tensor(shape: [0])

    public init(labelSmoothing: Float = 0) {
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "label smoothing must be in [0, 1]")
        self.labelSmoothing = labelSmoothing
    }

    /// The mean loss and the number of correct top-1 predictions; writes `gradLogits` unless told not to.
    public func compute(logits: Tensor, labels: [Int32], computeGradient: Bool = true) -> LossResult {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                     "cross-entropy: logits \(logits.shape) for \(labels.count) labels")
        let rows = logits.shape[0], classes = logits.shape[1]
        if computeGradient { gradLogits.ensureShape(rows, classes) }
        let eps = labelSmoothing
        let offTarget = eps / Float(classes)
        let onTarget = 1 - eps + offTarget
        let invRows = 1 / Float(rows)
        var total: Double = 0
        var correct = 0
        logits.withReadPointer { pz in
            labels.withUnsafeBufferPointer { py in
                for r in 0..<rows {
                    let z = pz + r * classes
                    let y = Int(py[r])
                    precondition(y >= 0 && y < classes, "cross-entropy: label \(y) outside 0..<\(classes)")
                    var maxValue = z[0], argmax = 0
                    for c in 1..<max(classes, 1) where z[c] > maxValue { maxValue = z[c]; argmax = c }
                    if argmax == y { correct += 1 }
                    var sumExp: Float = 0
                    for c in 0..<classes { sumExp += expf(z[c] - maxValue) }
                    let logSumExp = maxValue + logf(sumExp)
                    // −Σ q_c log p_c = logsumexp − Σ q_c z_c
                    var targetDot = Double(z[y]) * Double(1 - eps)
                    if eps > 0 {
                        var sumZ: Double = 0
                        for c in 0..<classes { sumZ += Double(z[c]) }
                        targetDot += Double(offTarget) * sumZ
                    }
                    total += Double(logSumExp) - targetDot
                    if computeGradient {
                        gradLogits.withPointer { pg in
                            let g = pg + r * classes
                            let invSum = 1 / sumExp
                            for c in 0..<classes { g[c] = (expf(z[c] - maxValue) * invSum - offTarget) * invRows }
                            g[y] = (expf(z[y] - maxValue) * invSum - onTarget) * invRows
                        }
                    }
                }
            }
        }
        return LossResult(loss: rows == 0 ? 0 : total / Double(rows), correct: correct, count: rows)
    }

    /// Counts rows whose top-1 prediction (first maximum) equals the label.
    public static func countCorrect(logits: Tensor, labels: [Int32]) -> Int {
        let rows = logits.shape[0], classes = logits.shape[1]
        var correct = 0
        logits.withReadPointer { pz in
            for r in 0..<rows {
                let z = pz + r * classes
                var best = z[0], arg = 0
                for c in 1..<max(classes, 1) where z[c] > best { best = z[c]; arg = c }
                if arg == Int(labels[r]) { correct += 1 }
            }
        }
        return correct
    }
}
