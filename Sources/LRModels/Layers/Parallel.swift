import Dispatch
import LRTensor

/// The layers' own threads: as many as BLAS has (`--threads`), since OpenBLAS is idle while a layer's loops run.
/// Work is split into contiguous ranges, one per worker, in a fixed way, so a run with the same thread count gives
/// the same result bit for bit.
enum LayerThreads {
    /// Workers for `count` independent units (samples, channels): the BLAS thread count, at most `count`.
    static func workers(for count: Int) -> Int { max(1, min(count, BLAS.threads)) }

    /// Runs `body(worker, range)` for worker w's share of 0..<count, all workers at once (on the calling thread
    /// alone when there is one).
    static func forEach(count: Int, workers: Int, _ body: @Sendable (_ worker: Int, _ range: Range<Int>) -> Void) {
        if workers <= 1 { body(0, 0..<count); return }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            body(w, (w * count / workers)..<((w + 1) * count / workers))
        }
    }
}
