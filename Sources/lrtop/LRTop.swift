import ArgumentParser

@main
struct LRTop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lrtop",
        abstract: "htop for neural-network training: train, watch and steer the learning rate live.")
}
