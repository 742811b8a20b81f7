import LROptim
import LRTrain
import LRTUI

/// The schedulers the `s` menu offers, from the scheduler descriptors: every kind of the spec language and a
/// `->` sequence. A field the user leaves empty is left out of the spec, so the scheduler takes its own
/// (PyTorch's) default, shown dimmed in the field; options the spec must give start filled in, sized to the rest
/// of the run.
enum SchedulerMenuCatalog {
    /// Listed first: what a person reaches for most.
    static let first = ["cosine"]

    /// `stepsPerEpoch` sizes the default warmup (one epoch or a tenth of the rest, whichever is shorter); nil
    /// where it is unknown (an attached run): a tenth of the rest.
    static func kinds(remainingSteps n: Int, stepsPerEpoch: Int? = nil) -> [SchedulerKind] {
        let rest = max(1, n)
        let sequence = SchedulerKind(
            name: "A -> B", summary: "parts one after another (PyTorch's SequentialLR); each starts where the "
                + "previous one's length ends, or at @N. Filled in: the default warmup + cosine for the rest of the run.",
            parameters: [SchedulerParameter(
                name: "spec", defaultValue: TrainConfig.defaultSchedule(totalSteps: rest, stepsPerEpoch: max(1, stepsPerEpoch ?? rest)),
                help: "e.g. warmup:steps=500 -> cosine, or linear:total_iters=100 -> @300 exp:gamma=0.99")],
            isSequence: true)
        let ordered = first.compactMap { name in SchedulerFactory.descriptors.first { $0.name == name } }
            + SchedulerFactory.descriptors.filter { !first.contains($0.name) }
        var kinds = ordered.map { kind($0, rest: rest) }
        kinds.insert(sequence, at: first.count)
        return kinds
    }

    static func kind(_ d: SchedulerDescriptor, rest: Int) -> SchedulerKind {
        let parameters = d.options.filter { !$0.fixed }.map { o -> SchedulerParameter in
            switch (o.defaultValue, o.suggestion) {
            case (.required, .text(let t)?):
                return SchedulerParameter(name: o.key, defaultValue: t, help: o.help)
            case (.required, .fractionsOfRest(let fractions)?):
                let steps = fractions.map { "\(max(1, Int(Double(rest) * $0)))" }.joined(separator: "/")
                return SchedulerParameter(name: o.key, defaultValue: steps, help: o.help)
            default:
                return SchedulerParameter(name: o.key, defaultValue: "", help: o.help, placeholder: o.defaultText)
            }
        }
        return SchedulerKind(name: d.name, summary: d.summary, parameters: parameters)
    }
}
