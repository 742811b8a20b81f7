import LRTensor

// Construction from the text syntax shared by the CLI, the config file and the TUI prompt.

/// What a schedule needs to know about the run to fill in defaults (cosine without `T_max` spans the run).
public struct ScheduleContext: Sendable {
    /// Scheduler steps in the whole run (optimizer steps, or epochs when stepping per epoch).
    public var totalSteps: Int
    /// Scheduler steps per epoch (1 when stepping per epoch).
    public var stepsPerEpoch: Int
    public init(totalSteps: Int, stepsPerEpoch: Int) {
        self.totalSteps = totalSteps; self.stepsPerEpoch = stepsPerEpoch
    }
}
