import Foundation
import Testing
import LROptim

/// The package root, found from this file's path.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct SchedulerDescriptorTests {
    /// Each descriptor's defaults are PyTorch's, as recorded from torch's signatures by
    /// scripts/record_torch_signatures.py; options lrtop sizes to the run or computes say so in the descriptor.
    @Test func defaultsArePyTorchs() throws {
        let url = packageRoot.appendingPathComponent("Tests/LROptimTests/Fixtures/torch_scheduler_signatures.json")
        let file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let classes = try #require(file["classes"] as? [String: [String: [String: Any]]])
        var checked = 0
        for d in SchedulerFactory.descriptors {
            guard let cls = d.signatureClass else { continue }
            let torch = try #require(classes[cls], "\(cls) is not in the fixture: rerun scripts/record_torch_signatures.py")
            #expect(d.aliases.contains(cls), "\(d.name) should accept PyTorch's class name \(cls)")
            for o in d.options {
                let p = try #require(torch[o.key], "\(d.name): \(cls) has no argument '\(o.key)'")
                let torchDefault = p["default"]
                switch o.defaultValue {
                case .required:
                    #expect(p["required"] as? Bool == true, "\(d.name).\(o.key): PyTorch has a default")
                case .number(let x):
                    #expect((torchDefault as? NSNumber)?.doubleValue == x, "\(d.name).\(o.key): \(x) vs \(String(describing: torchDefault))")
                case .flag(let b) where !o.fixed:
                    #expect((torchDefault as? Bool) == b, "\(d.name).\(o.key): \(b) vs \(String(describing: torchDefault))")
                case .word(let w):
                    #expect((torchDefault as? String) == w, "\(d.name).\(o.key): \(w) vs \(String(describing: torchDefault))")
                    #expect(o.choices.first == w, "\(d.name).\(o.key): the default is the first choice")
                case .flag, .restOfRun, .derived:
                    break  // lrtop's own rule, said in the help and the tables
                }
                checked += 1
            }
        }
        #expect(checked >= 30)
    }

    /// spec/schedulers.json and the tables in docs/optimizers.md and README.md are the descriptors written out.
    /// LRTOP_REGENERATE=1 rewrites them.
    @Test func generatedFilesAreUpToDate() throws {
        let regenerate = ProcessInfo.processInfo.environment["LRTOP_REGENERATE"] == "1"
        let how = "regenerate with: LRTOP_REGENERATE=1 swift test --filter SchedulerDescriptorTests"
        let json = packageRoot.appendingPathComponent("spec/schedulers.json")
        if regenerate {
            try FileManager.default.createDirectory(at: json.deletingLastPathComponent(), withIntermediateDirectories: true)
            try SchedulerFactory.descriptorJSON.write(to: json, atomically: true, encoding: .utf8)
        }
        #expect((try? String(contentsOf: json, encoding: .utf8)) == SchedulerFactory.descriptorJSON,
                "spec/schedulers.json is out of date: \(how)")
        for (path, marker, table) in [("docs/optimizers.md", "scheduler table", SchedulerFactory.docsTable),
                                      ("README.md", "scheduler table", SchedulerFactory.readmeTable)] {
            let url = packageRoot.appendingPathComponent(path)
            let text = try String(contentsOf: url, encoding: .utf8)
            let (begin, end) = SchedulerFactory.generatedMarkers(marker)
            let start = try #require(text.range(of: begin), "\(path) has no line '\(begin)'")
            let stop = try #require(text.range(of: end, range: start.upperBound..<text.endIndex), "\(path) has no line '\(end)'")
            let want = "\n" + table + "\n"
            if regenerate && String(text[start.upperBound..<stop.lowerBound]) != want {
                try text.replacingCharacters(in: start.upperBound..<stop.lowerBound, with: want)
                    .write(to: url, atomically: true, encoding: .utf8)
                continue
            }
            #expect(String(text[start.upperBound..<stop.lowerBound]) == want, "\(path)'s scheduler table is out of date: \(how)")
        }
    }

    /// Every kind builds from its defaults and the menu's suggestions alone, and its canonical spec names only
    /// options of its descriptor.
    @Test func everyKindBuildsFromItsDescriptor() throws {
        let context = ScheduleContext(totalSteps: 1000, stepsPerEpoch: 100)
        for d in SchedulerFactory.descriptors {
            var options: [String] = []
            for o in d.options where o.defaultValue == .required {
                guard let suggestion = o.suggestion else { options.append("\(o.key)=0.5"); continue }
                switch suggestion {
                case .text(let t): options.append("\(o.key)=\(t)")
                case .fractionsOfRest(let f): options.append("\(o.key)=" + f.map { "\(Int(1000 * $0))" }.joined(separator: "/"))
                }
            }
            let spec = options.isEmpty ? d.name : d.name + ":" + options.joined(separator: ",")
            let canonical = try SchedulerFactory.validate(spec: spec, context: context)
            let keys = SpecItem.parseOptionsForTest(canonical)
            #expect(keys.allSatisfy { d.keys.contains($0) }, "\(canonical) names a key outside \(d.keys)")
            for alias in d.aliases {
                #expect(try SchedulerFactory.descriptor(named: alias).name == d.name)
            }
        }
        #expect(SchedulerFactory.names == SchedulerFactory.descriptors.map(\.name))
    }

    /// The spec parser's errors list the descriptor's keys and names.
    @Test func errorsListTheDescriptorsKeys() {
        for d in SchedulerFactory.descriptors where !d.keys.isEmpty {
            let message = errorText {
                _ = try SchedulerFactory.validate(spec: "\(d.name):bogus=1", context: ScheduleContext(totalSteps: 100, stepsPerEpoch: 10))
            }
            #expect(message == "\(d.name): unknown parameter 'bogus' (valid: \(d.keys.joined(separator: ", ")))")
        }
    }

    /// The tables and the menu show defaults as a person writes them.
    @Test func defaultsReadAsWritten() throws {
        func text(_ kind: String, _ key: String) throws -> String? {
            try SchedulerFactory.descriptor(named: kind).option(key)?.defaultText
        }
        #expect(try text("linear", "start_factor") == "1/3")
        #expect(try text("linear", "end_factor") == "1")
        #expect(try text("step", "gamma") == "0.1")
        #expect(try text("onecycle", "final_div_factor") == "1e4")
        #expect(try text("plateau", "threshold") == "1e-4")
        #expect(try text("plateau", "eps") == "1e-8")
        #expect(try text("cyclic", "step_size_up") == "2000")
        #expect(try text("onecycle", "pct_start") == "0.3")
        #expect(try text("cosine", "T_max") == "rest of run")
        #expect(try text("step", "step_size") == "required")
    }
}

extension SpecItem {
    /// The keys of the first part of a canonical spec.
    static func parseOptionsForTest(_ spec: String) -> [String] {
        let first = spec.components(separatedBy: "->")[0]
        return ((try? SpecItem.parse(first, what: "scheduler"))?.options ?? []).map(\.key)
    }
}
