import LRLog

// What a run log's header and end record say, as the status panel shows it (replay and `lrtop watch`).
extension ReplaySource {
    /// Title, totals, optimizer and scheduler from a run log's header (its config as the user gave it).
    public static func headerStatus(_ h: RunHeader, title: String) -> LiveStatus {
        var s = LiveStatus(title: title)
        s.totalSteps = h.totalSteps
        s.stepsPerEpoch = h.stepsPerEpoch
        let config = h.config
        if let opt = config["optimizer"] {
            var text = opt
            if let lr = config["lr"] { text += " lr=" + lr }
            if let wd = config["weight_decay"] ?? config["wd"], Double(wd) != 0 { text += " wd=" + wd }
            s.optimizer = text
        }
        if let sched = config["scheduler"] ?? config["sched"] { s.scheduler = sched }
        s.groups = h.groups.map { LiveStatus.Group(name: $0, lr: Double(config["lr"] ?? "") ?? .nan) }
        if s.groups.contains(where: { !$0.lr.isFinite }) { s.groups = [] }
        return s
    }
}
