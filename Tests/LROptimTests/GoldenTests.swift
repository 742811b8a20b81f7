import Foundation
import Testing
import LROptim
import LRTensor

/// Every golden file must map to an implementation and pass; a file that cannot be mapped fails.
@Suite struct GoldenConformance {
    @Test("golden file conforms", arguments: Golden.files)
    func goldenFile(_ name: String) throws {
        let file = try Golden.load(name)
        switch file["kind"]?.string {
        case "optimizer":
            let run = try OptimGolden.run(file)
            let named = file["groups"]?.array?.first?["hyper"]?["optimizer"]?.string
            // The optimizer that ran is the one the file names (not SGD under every name).
            #expect(run.optimizer.name == named)
            if let mismatch = OptimGolden.firstMismatch(file, name: name, got: run.got) {
                Issue.record(Comment(rawValue: mismatch))
            }
        case "scheduler":
            if let mismatch = try SchedGolden.check(file, name: name) {
                Issue.record(Comment(rawValue: mismatch))
            }
        default:
            Issue.record("\(name): unknown kind \(file["kind"]?.specText ?? "nil") (expected optimizer or scheduler)")
        }
    }

    @Test func goldenDirectoryHasBothKinds() throws {
        let files = Golden.files
        #expect(files.contains { $0.hasPrefix("optim_") })
        #expect(files.contains { $0.hasPrefix("sched_") })
    }

    /// Each optimizer file is discriminating: running any *other* optimizer on it (with the file's
    /// hyperparameters where that optimizer has them) does not reproduce the expected trajectory. Together
    /// with the name check above this proves each file ran the optimizer it names.
    @Test("other optimizers fail the file", arguments: Golden.files.filter { $0.hasPrefix("optim_") })
    func otherOptimizersDiffer(_ name: String) throws {
        let file = try Golden.load(name)
        let named = try #require(file["groups"]?.array?.first?["hyper"]?["optimizer"]?.string)
        for other in OptimizerFactory.names where other != named {
            guard let run = try? OptimGolden.run(file, overrideName: other) else { continue }
            // Aliases of one implementation (adabound/amsbound) may legitimately agree.
            if let mine = try? OptimGolden.run(file), type(of: mine.optimizer) == type(of: run.optimizer) { continue }
            #expect(OptimGolden.firstMismatch(file, name: name, got: run.got) != nil,
                    "\(other) reproduces \(name), which names \(named)")
        }
    }
}
