import Testing
@testable import LRBridge

/// The status's `gpu` object (rank 0 of a run on a GPU) reaches the runs table's GPU column.
@Suite struct StatusGPUTests {
    @Test func gpuMemoryFiguresAreReadAndNonsenseIsUnknown() throws {
        let line = #"{"type":"status","state":"running","step":3,"lr":[0.1],"gpu":{"gpu_mem_peak":1073741824,"gpu_mem_total":85899345920,"gpu_util":40}}"#
        guard case .status(let s) = try ServerMessage.parse(Array(line.utf8)) else { Issue.record("not a status"); return }
        #expect(s.figures.gpuMemPeak == 1_073_741_824 && s.figures.gpuMemTotal == 85_899_345_920)
        let bad = #"{"type":"status","state":"running","step":3,"lr":[0.1],"gpu":{"gpu_mem_peak":-1,"gpu_mem_total":"lots"}}"#
        guard case .status(let b) = try ServerMessage.parse(Array(bad.utf8)) else { Issue.record("not a status"); return }
        #expect(b.figures.gpuMemPeak == nil && b.figures.gpuMemTotal == nil)
        let none = #"{"type":"status","state":"running","step":3,"lr":[0.1],"gpu":7}"#
        guard case .status(let n) = try ServerMessage.parse(Array(none.utf8)) else { Issue.record("not a status"); return }
        #expect(n.figures.gpuMemPeak == nil)
    }
}
