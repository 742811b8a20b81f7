import Foundation

// The scheduler descriptors written out for people (docs/optimizers.md, README.md) and for the Python bridge
// (spec/schedulers.json). LROptimTests' SchedulerDescriptorTests fail when a committed copy is out of date.

extension SchedulerFactory {
    /// What a generated markdown table is wrapped in, so a test can find it and rewrite it.
    public static func generatedMarkers(_ name: String) -> (begin: String, end: String) {
        ("<!-- \(name): generated from SchedulerFactory.descriptors; LRTOP_REGENERATE=1 swift test --filter SchedulerDescriptorTests -->",
         "<!-- end of \(name) -->")
    }

    /// Aliases other than the PyTorch class name (which has its own column).
    private static func shortAliases(_ d: SchedulerDescriptor) -> [String] { d.aliases.filter { $0 != d.reference } }

    private static func optionCell(_ o: SchedulerOption) -> String {
        if o.fixed { return "`\(o.key)` (\(o.defaultText) only)" }
        if o.type == .choice { return "`\(o.key)` (" + o.choices.map { "`\($0)`" }.joined(separator: "/") + ")" }
        return "`\(o.key)` (\(o.defaultText))"
    }

    /// docs/optimizers.md's table: every kind with its PyTorch class, options and defaults.
    public static var docsTable: String {
        var lines = ["| name (aliases) | PyTorch | what it does | options (default) | length in `->` |",
                     "| --- | --- | --- | --- | --- |"]
        for d in descriptors {
            let aliases = shortAliases(d)
            let name = "`\(d.name)`" + (aliases.isEmpty ? "" : " (" + aliases.map { "`\($0)`" }.joined(separator: ", ") + ")")
            let options = d.options.isEmpty ? "—" : d.options.map(optionCell).joined(separator: ", ")
            let length = d.needsMetric ? "not allowed" : d.lengthKey.map { "`\($0)`" } ?? "—"
            lines.append("| \(name) | \(d.reference.map { "`\($0)`" } ?? "—") | \(d.summary) | \(options) | \(length) |")
        }
        return lines.joined(separator: "\n")
    }

    /// README.md's table: names and keys.
    public static var readmeTable: String {
        var lines = ["| scheduler | options |", "| --- | --- |"]
        for d in descriptors {
            let name = ([d.name] + shortAliases(d)).map { "`\($0)`" }.joined(separator: " / ")
            let keys = d.options.filter { !$0.fixed }.map(\.key)
            lines.append("| \(name) | " + (keys.isEmpty ? d.summary : "`" + keys.joined(separator: " ") + "`") + " |")
        }
        lines.append("| `A -> B`, `A -> @N B` | PyTorch's `SequentialLR`: `warmup:steps=500 -> cosine` is the guide's warmup + cosine |")
        return lines.joined(separator: "\n")
    }

    /// spec/schedulers.json: the descriptors for the Python bridge, which parses specs by the same rules.
    public static var descriptorJSON: String {
        let file = DescriptorFile(
            about: "Generated from SchedulerFactory.descriptors (Sources/LROptim/Specs/SchedulerDescriptors.swift); "
                + "regenerate with LRTOP_REGENERATE=1 swift test --filter SchedulerDescriptorTests. A spec is "
                + "name[:key=value,...]; parts of a sequence are joined by '->' and may start at '@N'; 'length_key' "
                + "is the option whose value is a part's length in a sequence.",
            schedulers: descriptors.map(DescriptorFile.Scheduler.init))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(file), as: UTF8.self) + "\n"
    }
}

private struct DescriptorFile: Encodable {
    let about: String
    let schedulers: [Scheduler]

    struct Scheduler: Encodable {
        let name: String
        let aliases: [String]
        let pytorch: String?
        let summary: String
        let lengthKey: String?
        let needsMetric: Bool
        let options: [Option]

        init(_ d: SchedulerDescriptor) {
            name = d.name; aliases = d.aliases; pytorch = d.reference; summary = d.summary; lengthKey = d.lengthKey
            needsMetric = d.needsMetric; options = d.options.map(Option.init)
        }

        enum CodingKeys: String, CodingKey {
            case name, aliases, pytorch, summary, lengthKey = "length_key", needsMetric = "needs_metric", options
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name); try c.encode(aliases, forKey: .aliases)
            try c.encode(pytorch, forKey: .pytorch); try c.encode(summary, forKey: .summary)
            try c.encode(lengthKey, forKey: .lengthKey); try c.encode(needsMetric, forKey: .needsMetric)
            try c.encode(options, forKey: .options)
        }
    }

    /// One of `default` (a value), `required: true`, or `default_from` (`rest_of_run`, or what it is computed from).
    struct Option: Encodable {
        let option: SchedulerOption
        init(_ o: SchedulerOption) { option = o }

        enum CodingKeys: String, CodingKey {
            case key, type, help, choices, required, defaultValue = "default", defaultFrom = "default_from", only
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(option.key, forKey: .key)
            try c.encode(option.type, forKey: .type)
            try c.encode(option.help, forKey: .help)
            if !option.choices.isEmpty { try c.encode(option.choices, forKey: .choices) }
            switch option.defaultValue {
            case .required: try c.encode(true, forKey: .required)
            case .number(let x): try c.encode(x, forKey: option.fixed ? .only : .defaultValue)
            case .flag(let b): try c.encode(b, forKey: option.fixed ? .only : .defaultValue)
            case .word(let w): try c.encode(w, forKey: option.fixed ? .only : .defaultValue)
            case .restOfRun: try c.encode("rest_of_run", forKey: .defaultFrom)
            case .derived(let text): try c.encode(text, forKey: .defaultFrom)
            }
        }
    }
}
