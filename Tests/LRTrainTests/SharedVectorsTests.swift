import Foundation
import Testing
import LROptim
import LRTrain
import LRCommand

/// The steering language's shared vectors (spec/steering_vectors.json): the Python bridge's parser
/// (python/tests/test_shared_vectors.py) reads the same file, so both sides parse commands and scheduler specs alike.
@Suite struct SharedVectorsTests {
    static func vectors() throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("spec/steering_vectors.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A parsed command in the vectors' record form: `Command`'s own `Codable` form, the one the run log's events
    /// carry under "command".
    static func record(_ command: Command) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(command))
    }

    /// A record (from the JSON or from `record`) as one string, numbers as Swift prints them (so 0.0003 and 3e-4
    /// compare as the same Double); "value", "start" and "end" are the keys holding non-integers.
    static func canonical(_ value: Any, key: String = "") -> String {
        switch value {
        case let s as String: return "\"\(s)\""
        case let d as [String: Any]:
            return "{" + d.keys.sorted().map { "\($0): \(canonical(d[$0]!, key: $0))" }.joined(separator: ", ") + "}"
        case let a as [Any]: return "[" + a.map { canonical($0, key: key) }.joined(separator: ", ") + "]"
        case let n as NSNumber where !(value is Int) && !(value is Double):
            return ["value", "start", "end"].contains(key) ? "\(n.doubleValue)" : "\(n.intValue)"
        case let i as Int: return ["value", "start", "end"].contains(key) ? "\(Double(i))" : "\(i)"
        case let d as Double: return ["value", "start", "end"].contains(key) ? "\(d)" : "\(Int(d))"
        default:
            Issue.record("unexpected value for \(key): \(value)")
            return "?"
        }
    }

    /// `commands`, `branch_commands` (fork/adopt/drop, which python/tests/test_shared_vectors.py reads too) and
    /// `pace_commands` (`pace`, for the Python parser to read once it knows the verb).
    @Test(arguments: ["commands", "branch_commands", "pace_commands"])
    func commandsParseAsTheVectorsSay(section: String) throws {
        let cases = try #require(Self.vectors()[section] as? [[String: Any]])
        #expect(cases.count > (section == "pace_commands" ? 10 : 50))
        for c in cases {
            let text = c["text"] as! String
            if let parsed = c["parsed"] as? [String: Any] {
                do {
                    let command = try CommandParser.parse(text)
                    #expect(Self.canonical(try Self.record(command)) == Self.canonical(parsed), "\(text)")
                    // The record reads back as the same command (a fork's branches by their commands).
                    let data = try JSONSerialization.data(withJSONObject: parsed)
                    let decoded = try JSONDecoder().decode(Command.self, from: data)
                    #expect(Self.canonical(try Self.record(decoded)) == Self.canonical(parsed), "\(text)")
                } catch let error as CommandError {
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
