import Foundation
import Testing
import LRCommand
import LROptim
import LRTrain

/// The trajectories of spec/steering_vectors.json: commands at steps -> the LR each group trains with at each step.
/// `LRControl` reproduces them here, driven as the trainer drives it (warmup around the optimizer step, the scheduler
/// step, then the commands due at that boundary, applied as `Trainer+Commands.swift` applies them); a bridged PyTorch
/// run reproduces the same file in python/tests/test_trajectory_vectors.py.
@Suite struct TrajectoryVectorsTests {
    /// Param groups without parameters: only their LRs matter here.
    final class GroupsOnly: Optimizer {
        let name = "groups-only"
        let groups: [ParamGroup]
        init(names: [String], lrs: [Double]) {
            groups = zip(names, lrs).map { ParamGroup(name: $0, params: [], lr: $1) }
        }
        func step() {}
        func stateSnapshot() -> OptimizerState { OptimizerState() }
        func restore(_ state: OptimizerState) throws {}
        var summary: String { name }
    }

    struct Case {
        let name: String
        let groups: [String]
        let baseLRs: [Double]
        let totalSteps: Int
        let commands: [(at: Int, text: String)]
        /// The commands the trainer refuses (the run's error events), as the trainer's precheck refuses them.
        let refused: [String]
        let lrs: [[Double]]
    }

    static func cases() throws -> [Case] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("spec/steering_vectors.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try #require(json["trajectories"] as? [[String: Any]])
        return try list.map { c in
            Case(name: try #require(c["name"] as? String), groups: try #require(c["groups"] as? [String]),
                 baseLRs: try #require(c["base_lrs"] as? [Double]), totalSteps: try #require(c["total_steps"] as? Int),
                 commands: try #require(c["commands"] as? [[String: Any]]).map {
                     (at: try #require($0["at"] as? Int), text: try #require($0["text"] as? String))
                 },
                 refused: c["refused"] as? [String] ?? [],
                 lrs: try #require(c["lrs"] as? [[Double]]))
        }
    }

    /// One command at the boundary after `step` optimizer steps, as `Trainer.perform` applies it; false when the
    /// trainer refuses it.
    static func apply(_ text: String, to control: inout LRControl, optimizer: GroupsOnly, step: Int,
                      totalSteps: Int) throws -> Bool {
        let names = optimizer.groups.map(\.name)
        switch try CommandParser.parse(text) {
        case let .lr(group, change):
            let indices = try Trainer.groupIndices(group, names: names)
            // Refused as the trainer refuses it (an override an absolute schedule would undo): nothing changes.
            do { try Trainer.checkOverride(change, groups: indices, control: control, step: step) } catch { return false }
            switch change {
            case .set(let v): control.set(indices, optimizer: optimizer) { _ in v }
            case .scale(let f): control.set(indices, optimizer: optimizer) { $0 * f }
            case .hold: control.hold(indices)
            case .release: control.release(indices, optimizer: optimizer)
            case .reset where group == nil: try control.reset(optimizer: optimizer)
            case .reset: control.set(indices, optimizer: optimizer) { _ in optimizer.groups[indices[0]].initialLR }
            }
        case .sched(let spec):
            let rest = ScheduleContext(totalSteps: max(1, totalSteps - step), stepsPerEpoch: 1)
            try control.switchScheduler(to: spec, optimizer: optimizer, context: rest)
        case .warmup(let n):
            control.startWarmup(steps: n)
        default:
            Issue.record("'\(text)' does not steer the LR: not a trajectory command")
        }
        return true
    }

    @Test func lrControlFollowsEveryTrajectory() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 5)
        for c in cases {
            let optimizer = GroupsOnly(names: c.groups, lrs: c.baseLRs)
            var control = try LRControl(spec: "constant", optimizer: optimizer,
                                        context: ScheduleContext(totalSteps: c.totalSteps, stepsPerEpoch: 1))
            var got: [[Double]] = []
            var refused: [String] = []
            for step in 1...c.totalSteps {
                got.append(control.applyingWarmup(to: optimizer) {})
                control.step(optimizer: optimizer, metric: nil)
                for command in c.commands where command.at == step {
                    if try !Self.apply(command.text, to: &control, optimizer: optimizer, step: step, totalSteps: c.totalSteps) {
                        refused.append(command.text)
                    }
                }
            }
            #expect(refused == c.refused, "\(c.name): refused \(refused)")
            #expect(got.count == c.lrs.count, "\(c.name)")
            for (k, (g, want)) in zip(got, c.lrs).enumerated() {
                let close = zip(g, want).allSatisfy { abs($0 - $1) <= 1e-9 + 1e-6 * abs($1) }
                #expect(close, "\(c.name): step \(k + 1): LRControl gives \(g), the vectors \(want)")
            }
        }
    }
}
