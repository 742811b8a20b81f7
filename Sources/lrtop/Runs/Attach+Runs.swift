import Foundation
import LRBridge

extension Attach {
    /// `lrtop attach` with no argument, in a terminal, when no single run is obvious: several live under --runs,
    /// or none there and several on this machine. Then the runs table opens instead of a numbered prompt.
    func noSingleObviousRun() -> Bool {
        let live = RunFinder.probe(RunFinder.runs(under: URL(fileURLWithPath: runs))).filter { $0.state == .listening }
        if live.count != 0 { return live.count > 1 }
        return AttachLookup.liveRuns().rows.count > 1
    }
}
