import CBLAS
import Synchronization

/// The matrix products of the engine, through OpenBLAS. Row-major throughout.
public enum BLAS {
    private static let requestedThreads = Atomic<Int>(0)

    /// Sets the compute thread count: OpenBLAS's and the layers' own loops' (`computeThreads`). Small matrices (a
    /// 128x784 batch) run faster on fewer threads than OpenBLAS's default of one per core; `lrtop bench --threads`
    /// measures it.
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
        requestedThreads.store(max(1, n), ordering: .relaxed)
    }

    /// Sets OpenBLAS's thread count alone. A model whose large products run in the layers' own threads (the
    /// convnet) keeps OpenBLAS at one: after a threaded call, OpenBLAS's idle threads keep polling (`sched_yield`)
    /// for about 0.1 s, on the very cores the layers' threads need (stopping the polling with
    /// OPENBLAS_THREAD_TIMEOUT=4 took 13–24% off the convnet's step in three back-to-back pairs).
    public static func setLibraryThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// OpenBLAS's thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Threads for the layers' own parallel loops: the last `setThreads`, else OpenBLAS's count.
    public static var computeThreads: Int {
        let n = requestedThreads.load(ordering: .relaxed)
        return n > 0 ? n : threads
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, where op(A) is m×k and op(B) is k×n.
    /// `transA`: A is stored k×m; `transB`: B is stored n×k.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                            b: UnsafePointer<Float>, ldb: Int? = nil,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
        let lda = lda ?? (transA ? m : k)
        let ldb = ldb ?? (transB ? k : n)
        let ldc = ldc ?? n
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y += alpha · x
    @inlinable
    public static func axpy(_ n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }
}
