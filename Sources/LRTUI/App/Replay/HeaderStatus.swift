import LRLog

// What a run log's header and end record say, as the status panel shows it (replay and `lrtop watch`).
extension ReplaySource {
    /// Title, totals, optimizer and scheduler from a run log's header (its config as the user gave it).
    public static func headerStatus(_ h: RunHeader, title: String) -> LiveStatus {
        var s = LiveStatus(title: title)
        s.totalSteps = h.totalSteps
        s.stepsPerEpoch = h.stepsPerEpoch
        s.epochBase = h.epochBase
        let config = h.config
        s.optimizer = optimizerText(config, lr: config["lr"])
        if let sched = config["scheduler"] ?? config["sched"] { s.scheduler = sched }
        s.groups = h.groups.map { LiveStatus.Group(name: $0, lr: Double(config["lr"] ?? "") ?? .nan) }
        if s.groups.contains(where: { !$0.lr.isFinite }) { s.groups = [] }
        return s
    }

    /// The status panel's optimizer line from a run's config, with the LR in force (the config's base LR until a
    /// step or an override says otherwise, so it agrees with the LR shown beside it); empty without an optimizer.
    public static func optimizerText(_ config: [String: String], lr: String?) -> String {
        guard let opt = config["optimizer"] else { return "" }
        var text = opt
        if let lr { text += " lr=" + lr }
        if let wd = config["weight_decay"] ?? config["wd"], Double(wd) != 0 { text += " wd=" + wd }
        return text
    }

    /// `optimizerText` with the first group's LR in force, when it is known.
    public static func optimizerText(_ config: [String: String]?, inForce lr: Double?) -> String? {
        guard let config, let lr, lr.isFinite, config["optimizer"] != nil else { return nil }
        return optimizerText(config, lr: Format.lr(lr))
    }
}
