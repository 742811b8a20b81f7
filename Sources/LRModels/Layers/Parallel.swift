import Dispatch
import LRTensor
import Synchronization

/// The layers' own threads: `BLAS.computeThreads` (`--threads`), since OpenBLAS is idle while a layer's loops run.
/// Work comes in fixed chunks (a few samples, one channel) handed to whichever worker is free, so a worker the
/// system deschedules on a busy machine does not hold the step up; a chunk's result never depends on the worker
/// that computed it (sums over chunks are added in chunk order), so a run gives the same numbers bit for bit with
/// any thread count.
enum LayerThreads {
    /// Samples per chunk for a layer that splits its batch.
    static let samplesPerChunk = 8

    /// Workers for `chunks` chunks of work: the compute thread count, at most `chunks`.
    static func workers(for chunks: Int) -> Int { max(1, min(chunks, BLAS.computeThreads)) }

    /// Chunks of `samplesPerChunk` in a batch of `n`.
    static func chunks(samples n: Int) -> Int { (n + samplesPerChunk - 1) / samplesPerChunk }

    /// The samples of chunk `chunk` in a batch of `n`.
    static func samples(ofChunk chunk: Int, batch n: Int) -> Range<Int> {
        (chunk * samplesPerChunk)..<min(n, (chunk + 1) * samplesPerChunk)
    }

    /// Runs `body(worker, chunk)` for every chunk in 0..<chunks, each once, on `workers` threads at once (the
    /// calling thread alone when there is one); `worker` names the thread's own scratch buffers.
    static func forEachChunk(_ chunks: Int, workers: Int, _ body: @Sendable (_ worker: Int, _ chunk: Int) -> Void) {
        if workers <= 1 {
            for chunk in 0..<chunks { body(0, chunk) }
            return
        }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                let chunk = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard chunk < chunks else { return }
                body(worker, chunk)
            }
        }
    }

    /// Runs `body(elements)` over a batch of `n` samples of `perSample` elements each, one chunk of samples at a
    /// time on the layer threads: for elementwise passes over a whole activation.
    static func forEachElementChunk(samples n: Int, perSample: Int, _ body: @Sendable (_ elements: Range<Int>) -> Void) {
        let chunks = chunks(samples: n)
        forEachChunk(chunks, workers: workers(for: chunks)) { _, chunk in
            let range = samples(ofChunk: chunk, batch: n)
            body((range.lowerBound * perSample)..<(range.upperBound * perSample))
        }
    }
}
