// The run's settings that are one of a few words. The raw values are what the CLI, the config file, the run log's
// header and checkpoints spell, so those formats stay as they were; the lrtop target makes them CLI arguments.

/// When the scheduler steps: after every optimizer step, or after every epoch (PyTorch's `interval` in Lightning).
public enum SchedulerInterval: String, Codable, Sendable, CaseIterable {
    case step, epoch
}

/// What ReduceLROnPlateau watches.
public enum PlateauMetric: String, Codable, Sendable, CaseIterable {
    case valLoss = "val_loss"
    case valAccuracy = "val_acc"
    case trainLoss = "train_loss"
}

/// What the divergence guard does when it trips.
public enum GuardAction: String, Codable, Sendable, CaseIterable {
    /// Pause the run for a person to lower the LR or roll back.
    case pause
    /// Restore the last checkpoint and halve the LR.
    case rollback
    /// End the run (`diverged`).
    case stop
}
