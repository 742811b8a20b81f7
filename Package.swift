// swift-tools-version:6.0
import PackageDescription

// The compute targets are built for x86-64-v3 (AVX2 + FMA: Haswell, Zen 1 and later; swiftc calls that level
// `haswell`), so their loops run 8 floats wide (about 7% of a training step here); the binary then needs such a CPU.
// Swift never contracts a*b+c into an FMA on its own, so each element's arithmetic is unchanged (LROptimTests'
// VectorisedLoopTests hold the optimizers to their scalar loops bit for bit). No AVX-512: not every x86 CPU has it.
#if arch(x86_64)
let computeCPU = ["-target-cpu", "haswell"]
#else
let computeCPU: [String] = []
#endif

// One target per concern; the dependency arrows point downwards only:
//   lrtop -> LRTUI (terminal UI) -> LRLog (run records, log formats) -> LRCommand (the steering language)
//   lrtop -> LRTrain (trainer) -> LROptim, LRModels -> LRTensor -> CBLAS; LRTrain -> LRLog
//   lrtop -> LRBridge (`lrtop attach`: the socket client of a PyTorch run, as a RunSource) -> LRTUI
//   lrtop -> LRServe (the control socket and registry entry of a run trained here) -> LRBridge, LRTrain
// The UI knows records and a RunSource protocol, not the trainer: the lrtop target adapts one to the other.
let package = Package(
    name: "lrtop",
    products: [
        .executable(name: "lrtop", targets: ["lrtop"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: nil,
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CNcursesW", path: "Sources/CNcursesW", providers: [.apt(["libncursesw5-dev"])]),

        .target(name: "LRTensor", dependencies: ["CBLAS"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"] + computeCPU)]),
        .target(name: "LRModels", dependencies: ["LRTensor", "CZlib"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"] + computeCPU)]),
        .target(name: "LROptim", dependencies: ["LRTensor"],
                // Float.squareRoot() goes through a C shim; with errno semantics it keeps a call to sqrtf, and a
                // loop holding a call does not vectorise (the optimizers' loops).
                swiftSettings: [.unsafeFlags(["-Ounchecked", "-Xcc", "-fno-math-errno"] + computeCPU)]),
        .target(name: "LRCommand"),
        .target(name: "LRLog", dependencies: ["LRCommand"]),
        .target(name: "LRTrain", dependencies: ["LRTensor", "LRModels", "LROptim", "LRCommand", "LRLog"]),
        .target(name: "LRTUI", dependencies: ["LRCommand", "LRLog", "CNcursesW"]),
        .target(name: "LRBridge", dependencies: ["LRTUI", "LRCommand", "LRLog"]),
        // The control socket and registry entry of a run trained here: the bridge's protocol, served by lrtop.
        .target(name: "LRServe", dependencies: ["LRBridge", "LRTrain", "LRCommand", "LRLog", "LRTUI"]),
        .executableTarget(name: "lrtop", dependencies: [
            "LRTUI", "LRBridge", "LRServe", "LRTrain", "LRCommand", "LRLog", "LROptim", "LRModels", "LRTensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "LRTensorTests", dependencies: ["LRTensor"]),
        .testTarget(name: "LRModelsTests", dependencies: ["LRModels"]),
        .testTarget(name: "LROptimTests", dependencies: ["LROptim"], exclude: ["Fixtures"]),
        .testTarget(name: "LRCommandTests", dependencies: ["LRCommand"]),
        .testTarget(name: "LRLogTests", dependencies: ["LRLog", "LRCommand"], exclude: ["Fixtures"]),
        .testTarget(name: "LRTrainTests", dependencies: ["LRTrain", "LRCommand"]),
        .testTarget(name: "LRTUITests", dependencies: ["LRTUI", "LRCommand"]),
        // The attach client against a fake bridge server written in the tests; commands checked by the real parser.
        .testTarget(name: "LRBridgeTests", dependencies: ["LRBridge", "LRCommand", "LRLog", "LRTrain"]),
        .testTarget(name: "LRServeTests", dependencies: ["LRServe", "LRBridge", "LRLog"]),
        // Drives the built `lrtop` binary as a user would: CLI, files written, tmux sessions.
        .testTarget(name: "LRTopCLITests", dependencies: ["lrtop"]),
    ],
    swiftLanguageModes: [.v6]
)
