import Foundation
import LRTensor

/// A rule that puts parameters into a param group by name, with the group's settings.
///
/// Syntax (the CLI's repeatable `--group RULE`, one rule per line in a config file):
///
///     SELECTORS[:KEY=VALUE,...]
///
/// - `SELECTORS`: a comma list of globs over the dotted parameter name (`*` any run of characters, dots
///   included; `?` one character), matched against the whole name: `head.*`, `*.bias,*bn*`.
///   Or the built-in `no_decay_bias_norm` (alias `no_decay`): every tensor with fewer than 2 dimensions
///   (biases, norm gains and offsets), with `weight_decay=0` and the name `no_decay`, as nanoGPT does.
/// - `lr_scale=S`: the group's LR is the optimizer's LR × S. `lr=X`: an absolute LR (`lr=0` freezes).
/// - `name=NAME`: the group's name (otherwise taken from the first glob: `head.*` → `head`).
/// - any other key is an optimizer hyperparameter for this group (`weight_decay=0`, `betas=0.9/0.95`),
///   checked against the optimizer when it is built.
///
/// The first matching rule wins; unmatched parameters form the group `default`; empty groups are dropped.
public struct ParamGroupRule: Equatable, Sendable, CustomStringConvertible {
    public enum Selector: Equatable, Sendable {
        case glob(String)
        /// Tensors with fewer than two dimensions (the built-in no-decay rule).
        case lowRank
    }

    public var selectors: [Selector]
    /// The explicit `name=`, or nil to derive one.
    public var explicitName: String?
    public var lrScale: Double?
    public var lr: Double?
    /// Optimizer hyperparameters for the group, as spec text.
    public var options: [(key: String, value: String)]

    public static let builtinNoDecay = "no_decay_bias_norm"

    public init(selectors: [Selector], name: String? = nil, lrScale: Double? = nil, lr: Double? = nil,
                options: [(key: String, value: String)] = []) {
        self.selectors = selectors; self.explicitName = name; self.lrScale = lrScale; self.lr = lr; self.options = options
    }

    public static func == (a: ParamGroupRule, b: ParamGroupRule) -> Bool { a.description == b.description }

    /// Parses one rule; errors name the rule and the bad part.
    public static func parse(_ text: String) throws -> ParamGroupRule {
        let t = text.trimmingSpaces
        let selText: String, optText: String
        if let c = t.firstIndex(of: ":") {
            selText = String(t[..<c]); optText = String(t[t.index(after: c)...])
        } else {
            selText = t; optText = ""
        }
        let globs = selText.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        guard !globs.isEmpty else { throw OptimError("group rule '\(t)': no parameter pattern before ':' (e.g. 'head.*:lr_scale=2')") }
        var rule = ParamGroupRule(selectors: [])
        var builtinOptions: [(key: String, value: String)] = []
        for g in globs {
            if g == builtinNoDecay || g == "no_decay" {
                rule.selectors.append(.lowRank)
                if rule.explicitName == nil { rule.explicitName = "no_decay" }
                builtinOptions = [("weight_decay", "0")]
            } else {
                if g.contains("=") { throw OptimError("group rule '\(t)': '\(g)' is not a pattern (write PATTERNS:key=value,...)") }
                rule.selectors.append(.glob(g))
            }
        }
        let owner = "group rule '\(t)'"
        for (key, value) in try SpecItem.parseOptions(optText, owner: owner) {
            switch key {
            case "name":
                guard value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                    throw OptimError("\(owner): invalid value '\(value)' for name: expected letters, digits, '_', '-', '.'")
                }
                rule.explicitName = value
            case "lr_scale":
                guard let s = OptionReader.number(value), s >= 0 else {
                    throw OptimError("\(owner): invalid value '\(value)' for lr_scale: expected a number >= 0")
                }
                rule.lrScale = s
            case "lr":
                guard let s = OptionReader.number(value) else {
                    throw OptimError("\(owner): invalid value '\(value)' for lr: expected a number")
                }
                rule.lr = s
            default:
                builtinOptions.removeAll { $0.key == key }
                rule.options.append((key, value))
            }
        }
        rule.options = builtinOptions + rule.options
        if rule.lr != nil && rule.lrScale != nil { throw OptimError("\(owner): give either lr or lr_scale, not both") }
        return rule
    }

    /// Parses rules in order (CLI flags or config-file lines; blank lines and `#` comments are skipped).
    public static func parse(lines: [String]) throws -> [ParamGroupRule] {
        try lines.map { $0.trimmingSpaces }.filter { !$0.isEmpty && !$0.hasPrefix("#") }.map(parse)
    }

    public func matches(_ p: Parameter) -> Bool {
        selectors.contains { sel in
            switch sel {
            case .glob(let g): return globMatch(g, p.name)
            case .lowRank: return p.value.rank < 2
            }
        }
    }

    /// The group name: `name=` if given, else the first glob without its wildcards (`head.*` → `head`).
    public var derivedName: String? {
        if let explicitName { return explicitName }
        for sel in selectors {
            if case .glob(let g) = sel {
                let stem = g.split(whereSeparator: { "*?".contains($0) }).map(String.init)
                    .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ".")) }.filter { !$0.isEmpty }.joined(separator: ".")
                if !stem.isEmpty { return stem }
            }
        }
        return nil
    }

    /// The canonical text, parseable again.
    public var description: String {
        var sels: [String] = []
        var opts = options
        for s in selectors {
            switch s {
            case .glob(let g): sels.append(g)
            case .lowRank:
                sels.append(Self.builtinNoDecay)
                if let i = opts.firstIndex(where: { $0.key == "weight_decay" && $0.value == "0" }) { opts.remove(at: i) }
            }
        }
        var kv: [String] = []
        if let explicitName, !(selectors == [.lowRank] && explicitName == "no_decay") { kv.append("name=\(explicitName)") }
        if let lrScale { kv.append("lr_scale=\(specNumber(lrScale))") }
        if let lr { kv.append("lr=\(lr)") }
        kv += opts.map { "\($0.key)=\($0.value)" }
        return sels.joined(separator: ",") + (kv.isEmpty ? "" : ":" + kv.joined(separator: ","))
    }
}

/// One param group as the factory builds it: a name, its parameters, an LR (nil: the optimizer's) and
/// hyperparameter overrides as spec text.
public struct GroupSpec {
    public var name: String
    public var params: [Parameter]
    public var lr: Double?
    public var options: [(key: String, value: String)]
    public init(name: String, params: [Parameter], lr: Double? = nil, options: [(key: String, value: String)] = []) {
        self.name = name; self.params = params; self.lr = lr; self.options = options
    }
}

extension ParamGroupRule {
    /// Splits parameters into groups: the first matching rule wins, unmatched parameters go to `default`
    /// (first), the other groups follow in rule order; empty groups are dropped. `baseLR` resolves `lr_scale`.
    public static func assign(_ parameters: [Parameter], rules: [ParamGroupRule], baseLR: Double) -> [GroupSpec] {
        var buckets = [[Parameter]](repeating: [], count: rules.count)
        var unmatched: [Parameter] = []
        for p in parameters {
            if let r = rules.firstIndex(where: { $0.matches(p) }) { buckets[r].append(p) } else { unmatched.append(p) }
        }
        var out: [GroupSpec] = []
        var used: Set<String> = []
        func unique(_ base: String) -> String {
            var name = base, k = 2
            while used.contains(name) { name = "\(base)\(k)"; k += 1 }
            used.insert(name)
            return name
        }
        if !unmatched.isEmpty { out.append(GroupSpec(name: unique("default"), params: unmatched)) }
        for (r, rule) in rules.enumerated() where !buckets[r].isEmpty {
            let lr = rule.lr ?? rule.lrScale.map { baseLR * $0 }
            out.append(GroupSpec(name: unique(rule.derivedName ?? "group\(r + 1)"), params: buckets[r], lr: lr,
                                 options: rule.options))
        }
        return out
    }
}

/// Glob match of the whole string: `*` matches any run (dots included), `?` one character.
func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8), t = Array(text.utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}
