import ArgumentParser
import LRTrain

// ArgumentParser parses these from their raw values and lists them in --help and in its error for a bad value.
extension SchedulerInterval: ExpressibleByArgument {}
extension PlateauMetric: ExpressibleByArgument {}
extension GuardAction: ExpressibleByArgument {}
