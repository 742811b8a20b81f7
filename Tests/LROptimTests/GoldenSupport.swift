import Foundation
import LROptim
import LRTensor

/// A JSON value, decoded strictly (a `true` is never a number, a `1` never a Bool).
enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    subscript(_ key: String) -> JSONValue? { if case .object(let o) = self { return o[key] } else { return nil } }
    var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    var double: Double? { if case .number(let d) = self { return d } else { return nil } }
    var int: Int? { double.map { Int($0) } }
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var doubles: [Double]? { array?.compactMap(\.double) }
    var floats: [Float]? { array?.compactMap { $0.double.map(Float.init) } }

    /// The value as spec text: numbers in shortest form, lists joined by `/`, null as `none`.
    var specText: String {
        switch self {
        case .null: return "none"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? "\(Int64(d))" : "\(d)"
        case .string(let s): return s
        case .array(let a): return a.map(\.specText).joined(separator: "/")
        case .object: return "?"
        }
    }
}

enum Golden {
    /// `LRTOP_GOLDEN_DIR`, or `<package root>/../shared/golden` with the root found from this file's path.
    static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["LRTOP_GOLDEN_DIR"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/golden")
    }

    /// Every `*.json` in the directory, sorted. A missing or empty directory gives a name that fails to load,
    /// so the suite fails instead of passing with nothing checked.
    static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let json = names.filter { $0.hasSuffix(".json") }.sorted()
        return json.isEmpty ? ["<no golden files in \(directory.path)>"] : json
    }

    static func load(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }
}

struct GoldenFailure: Error, CustomStringConvertible { let description: String }

/// The result of running one optimizer golden file.
struct OptimRun {
    /// `got[s][t]`: tensor t after step s.
    var got: [[[Float]]]
    var optimizer: OptimizerBase
}

enum OptimGolden {
    /// Builds the optimizer named by each group's `hyper.optimizer` (or `override`), feeds the recorded
    /// gradients and LRs, and returns the parameters after every step.
    static func run(_ file: JSONValue, overrideName: String? = nil, keepHyper: Bool = true) throws -> OptimRun {
        guard let shapes = file["shapes"]?.array?.map({ $0.array?.compactMap(\.int) ?? [] }),
              let initial = file["init"]?.array?.compactMap(\.floats),
              let groupsJSON = file["groups"]?.array,
              let lrs = file["lr"]?.array?.compactMap(\.doubles),
              let grads = file["grads"]?.array else {
            throw GoldenFailure(description: "malformed optimizer file (needs shapes, init, groups, lr, grads)")
        }
        let params = shapes.enumerated().map { i, shape in
            Parameter(name: "p\(i)", value: Tensor(shape: shape, storage: initial[i]))
        }
        var names: Set<String> = []
        var groupSpecs: [GroupSpec] = []
        for (g, gj) in groupsJSON.enumerated() {
            guard let hyper = gj["hyper"]?.object, let idx = gj["params"]?.array?.compactMap(\.int) else {
                throw GoldenFailure(description: "group \(g): needs params and hyper")
            }
            guard let name = hyper["optimizer"]?.string else { throw GoldenFailure(description: "group \(g): no hyper.optimizer") }
            names.insert(name)
            let valid = try OptimizerFactory.descriptor(named: overrideName ?? name).validKeys
            var options: [(key: String, value: String)] = []
            for (k, v) in hyper.sorted(by: { $0.key < $1.key }) where k != "optimizer" {
                if overrideName != nil && (!keepHyper || !valid.contains(k)) && k != "lr" { continue }
                options.append((k, v.specText))
            }
            groupSpecs.append(GroupSpec(name: "g\(g)", params: idx.map { params[$0] }, options: options))
        }
        guard names.count == 1, let name = names.first else {
            throw GoldenFailure(description: "groups name different optimizers: \(names.sorted())")
        }
        let opt = try OptimizerFactory.make(name: overrideName ?? name, groups: groupSpecs)
        var got: [[[Float]]] = []
        for s in 0..<grads.count {
            guard let gs = grads[s].array?.compactMap(\.floats), gs.count == params.count else {
                throw GoldenFailure(description: "step \(s): grads need one list per tensor")
            }
            for (t, p) in params.enumerated() { p.grad.storage = gs[t] }
            for (g, group) in opt.groups.enumerated() { group.lr = lrs[g][s] }
            opt.step()
            got.append(params.map { $0.value.storage })
        }
        return OptimRun(got: got, optimizer: opt)
    }

    /// The first element outside `atol + rtol·|want|`, described, or nil when all match.
    static func firstMismatch(_ file: JSONValue, name: String, got: [[[Float]]]) -> String? {
        let rtol = file["rtol"]?.double ?? 0, atol = file["atol"]?.double ?? 0
        guard let expected = file["expected"]?.array else { return "\(name): no expected values" }
        if expected.count != got.count { return "\(name): \(got.count) steps run, \(expected.count) expected" }
        for s in 0..<expected.count {
            let want = expected[s].array?.compactMap(\.doubles) ?? []
            for t in 0..<want.count {
                for i in 0..<want[t].count {
                    let g = Double(got[s][t][i]), w = want[t][i]
                    if !(abs(g - w) <= atol + rtol * abs(w)) {
                        return "\(name): step \(s), tensor \(t), index \(i): got \(g), want \(w)"
                    }
                }
            }
        }
        return nil
    }
}
