import Foundation
import Testing
import LROptim
import LRTrain

/// The steering language's shared vectors (spec/steering_vectors.json): the Python bridge's parser
/// (python/tests/test_shared_vectors.py) reads the same file, so both sides parse commands and scheduler specs alike.
@Suite struct SharedVectorsTests {
    static func vectors() throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("spec/steering_vectors.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A parsed command in the vectors' record form.
    static func record(_ command: Command) -> [String: String] {
        func lr(_ group: String?, _ change: String, _ value: Double?) -> [String: String] {
            var r = ["verb": "lr", "change": change]
            if let group { r["group"] = group }
            if let value { r["value"] = "\(value)" }
            return r
        }
        switch command {
        case let .lr(group, .set(v)): return lr(group, "set", v)
        case let .lr(group, .scale(f)): return lr(group, "scale", f)
        case let .lr(group, .hold): return lr(group, "hold", nil)
        case let .lr(group, .release): return lr(group, "release", nil)
        case let .lr(group, .reset): return lr(group, "reset", nil)
        case let .sched(spec): return ["verb": "sched", "spec": spec]
        case let .warmup(n): return ["verb": "warmup", "count": "\(n)"]
        case let .step(n): return ["verb": "step", "count": "\(n)"]
        case .pause: return ["verb": "pause"]
        case .resume: return ["verb": "resume"]
        case .stop: return ["verb": "stop"]
        case .checkpoint: return ["verb": "ckpt"]
        case .rollback: return ["verb": "rollback"]
        case .eval: return ["verb": "eval"]
        case let .findLR(r): return ["verb": "find-lr", "start": "\(r.start)", "end": "\(r.end)", "count": "\(r.steps)"]
        }
    }

    /// The JSON record with numbers as Swift prints them (so 0.0003 and 3e-4 compare as the same Double).
    static func expected(_ json: [String: Any]) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in json {
            switch v {
            case let s as String: out[k] = s
            case let n as NSNumber:
                out[k] = ["value", "start", "end"].contains(k) ? "\(n.doubleValue)" : "\(n.intValue)"
            default: Issue.record("unexpected value for \(k): \(v)")
            }
        }
        return out
    }

    @Test func commandsParseAsTheVectorsSay() throws {
        let cases = try #require(Self.vectors()["commands"] as? [[String: Any]])
        #expect(cases.count > 50)
        for c in cases {
            let text = c["text"] as! String
            if let parsed = c["parsed"] as? [String: Any] {
                do {
                    let command = try CommandParser.parse(text)
                    #expect(Self.record(command) == Self.expected(parsed), "\(text)")
                } catch {
                    Issue.record("'\(text)' should parse, got: \(error.description)")
                }
            } else {
                let fragment = c["error_contains"] as! String
                do {
                    let command = try CommandParser.parse(text)
                    Issue.record("'\(text)' should be refused (\(c["error_kind"] ?? "")), parsed as \(command)")
                } catch {
                    #expect(error.description.contains(fragment), "'\(text)': \(error.description)")
                }
            }
        }
    }

    @Test func schedulerSpecsResolveAsTheVectorsSay() throws {
        let cases = try #require(Self.vectors()["schedulers"] as? [[String: Any]])
        #expect(cases.count > 50)
        for c in cases {
            let spec = c["spec"] as! String
            let total = (c["total_steps"] as! NSNumber).intValue
            let context = ScheduleContext(totalSteps: total, stepsPerEpoch: 1)
            if let canonical = c["canonical"] as? String {
                do {
                    #expect(try SchedulerFactory.validate(spec: spec, context: context) == canonical, "\(spec)")
                } catch {
                    Issue.record("'\(spec)' should resolve, got: \(error)")
                }
            } else {
                let fragment = c["error_contains"] as! String
                do {
                    let got = try SchedulerFactory.validate(spec: spec, context: context)
                    Issue.record("'\(spec)' should be refused (\(fragment)), resolved to \(got)")
                } catch {
                    #expect("\(error)".contains(fragment), "'\(spec)': \(error)")
                }
            }
        }
    }
}
