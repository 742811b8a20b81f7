// The shared text syntax: `name:key=value,key=value`.
//
// Used by optimizer specs (`adamw:lr=1e-3,betas=0.9/0.999`), scheduler segments (`cosine:T_max=2000`) and
// param-group rules (`head.*:lr_scale=2`). Values hold no commas; lists use `/` (`milestones=30/80`).

/// A parsed `name:key=value,...` item; option order is kept so canonical strings are stable.
public struct SpecItem: Equatable, Sendable {
    public var name: String
    public var options: [(key: String, value: String)]

    public init(name: String, options: [(key: String, value: String)] = []) {
        self.name = name; self.options = options
    }

    public static func == (a: SpecItem, b: SpecItem) -> Bool {
        a.name == b.name && a.options.map { "\($0.key)=\($0.value)" } == b.options.map { "\($0.key)=\($0.value)" }
    }

    /// Parses `name` or `name:key=value,...`. Whitespace around names, keys and values is ignored.
    public static func parse(_ text: String, what: String) throws -> SpecItem {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { throw OptimError("empty \(what) spec") }
        let name: String
        var rest = ""
        if let colon = trimmed.firstIndex(of: ":") {
            name = String(trimmed[..<colon]).trimmingSpaces
            rest = String(trimmed[trimmed.index(after: colon)...])
        } else {
            name = trimmed
        }
        guard !name.isEmpty else { throw OptimError("missing \(what) name in '\(trimmed)'") }
        return SpecItem(name: name, options: try parseOptions(rest, owner: name))
    }

    /// Parses `key=value,key=value` (empty text gives no options). Duplicate keys are an error.
    static func parseOptions(_ text: String, owner: String) throws -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let part = String(raw).trimmingSpaces
            if part.isEmpty {
                if text.trimmingSpaces.isEmpty { continue }
                throw OptimError("\(owner): empty parameter in '\(text.trimmingSpaces)' (write key=value,key=value)")
            }
            guard let eq = part.firstIndex(of: "=") else {
                throw OptimError("\(owner): malformed parameter '\(part)' (expected key=value)")
            }
            let key = String(part[..<eq]).trimmingSpaces
            let value = String(part[part.index(after: eq)...]).trimmingSpaces
            guard !key.isEmpty else { throw OptimError("\(owner): malformed parameter '\(part)' (missing key)") }
            guard !value.isEmpty else { throw OptimError("\(owner): missing value for \(key)") }
            if out.contains(where: { $0.key == key }) { throw OptimError("\(owner): parameter '\(key)' given twice") }
            out.append((key, value))
        }
        return out
    }

    /// `name:key=value,...` (just `name` without options).
    public var text: String {
        options.isEmpty ? name : name + ":" + options.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Typed access to a spec's options, with errors that name the owner, the key and what was expected.
struct OptionReader {
    let owner: String
    private var values: [String: String]
    private(set) var used: Set<String> = []

    /// Rejects keys outside `valid` with the list of valid keys (`hidden` keys are accepted but not listed).
    init(owner: String, options: [(key: String, value: String)], valid: [String], hidden: [String] = []) throws {
        self.owner = owner
        var v: [String: String] = [:]
        for (k, val) in options {
            guard valid.contains(k) || hidden.contains(k) else {
                let list = valid.isEmpty ? "none" : valid.joined(separator: ", ")
                throw OptimError("\(owner): unknown parameter '\(k)' (valid: \(list))")
            }
            v[k] = val
        }
        values = v
    }

    func has(_ key: String) -> Bool { values[key] != nil }
    func raw(_ key: String) -> String? { values[key] }

    private func bad(_ key: String, _ value: String, _ expected: String) -> OptimError {
        OptimError("\(owner): invalid value '\(value)' for \(key): expected \(expected)")
    }

    static func number(_ s: String) -> Double? {
        guard let d = Double(s.trimmingSpaces), d.isFinite else { return nil }
        return d
    }

    func double(_ key: String) throws -> Double? {
        guard let s = values[key] else { return nil }
        guard let d = Self.number(s) else { throw bad(key, s, "a number") }
        // What trains is float32: `exp:gamma=1e300` would overflow at the first step.
        guard abs(d) <= Double(Float.greatestFiniteMagnitude) else {
            throw bad(key, s, "a number within float32's range (at most 3.4e38 in size)")
        }
        return d
    }
    func double(_ key: String, default def: Double) throws -> Double { try double(key) ?? def }

    func requiredDouble(_ key: String) throws -> Double {
        guard let d = try double(key) else { throw OptimError("\(owner): missing parameter '\(key)'") }
        return d
    }

    func int(_ key: String) throws -> Int? {
        guard let s = values[key] else { return nil }
        guard let d = Self.number(s), d == d.rounded(), abs(d) < 1e15 else { throw bad(key, s, "an integer") }
        return Int(d)
    }
    func int(_ key: String, default def: Int) throws -> Int { try int(key) ?? def }
    func requiredInt(_ key: String) throws -> Int {
        guard let i = try int(key) else { throw OptimError("\(owner): missing parameter '\(key)'") }
        return i
    }

    static func bool(_ s: String) -> Bool? {
        switch s.trimmingSpaces.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }
    func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let s = values[key] else { return def }
        guard let b = Self.bool(s) else { throw bad(key, s, "true or false") }
        return b
    }

    func choice(_ key: String, _ options: [String], default def: String) throws -> String {
        guard let s = values[key] else { return def }
        guard options.contains(s) else { throw bad(key, s, "one of " + options.joined(separator: ", ")) }
        return s
    }

    /// `30/80/120` (a single value is a one-element list).
    func doubleList(_ key: String) throws -> [Double]? {
        guard let s = values[key] else { return nil }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map { Self.number(String($0)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { throw bad(key, s, "numbers separated by '/'") }
        guard parts.allSatisfy({ abs($0!) <= Double(Float.greatestFiniteMagnitude) }) else {
            throw bad(key, s, "numbers within float32's range (at most 3.4e38 in size) separated by '/'")
        }
        return parts.map { $0! }
    }
    func intList(_ key: String) throws -> [Int]? {
        guard let s = values[key] else { return nil }
        guard let ds = try? doubleList(key), ds.allSatisfy({ $0 == $0.rounded() && abs($0) < 1e15 }) else {
            throw bad(key, s, "integers separated by '/', like 30/80")
        }
        return ds.map { Int($0) }
    }
}
