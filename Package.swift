// swift-tools-version: 6.0
import PackageDescription

let optimisedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Graft",
    products: [
        .library(name: "Graft", targets: ["Graft"]),
        .executable(name: "adapt", targets: ["adapt"]),
        .executable(name: "graft-bench", targets: ["GraftBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Only `GraftServe` (and `adapt`, which runs it) link these: library users don't get SwiftNIO.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),  // Hummingbird's: GraftServe sets its idle timeout, reads its parser errors
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries (apt: libopenblas-dev, libhdf5-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        // HDF5 exposes its type ids and flags as macros; this shim makes them callable.
        .target(name: "CHDF5Shim", dependencies: ["CHDF5"]),

        // The numeric kernels are optimised in debug builds too: their SIMD code is
        // orders of magnitude slower unoptimised, and the tests run real models.
        .target(name: "GraftTensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimisedInDebug),
        .target(name: "GraftAutodiff", dependencies: ["GraftTensor", "CKernels"], swiftSettings: optimisedInDebug),
        // exp, GELU and softmax in C, compiled for several x86 vector extensions and
        // picked at load time (Swift code is built for the baseline ISA only).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "GraftNN", dependencies: ["GraftAutodiff"]),
        .target(name: "GraftIO", dependencies: ["CHDF5", "CHDF5Shim", "GraftTensor", "GraftText", "GraftNN", "GraftFiles"]),
        .target(name: "GraftText", dependencies: ["GraftFiles"]),
        // Data recipes: fetch, convert and split the public data sets (runs pip / apt-get when a set is missing).
        .target(name: "GraftData", dependencies: ["GraftTensor", "GraftFiles"]),
        // Atomic, synced file writes, shared by every target that writes files.
        .target(name: "GraftFiles"),
        .target(name: "GraftAdapters", dependencies: ["GraftNN", "GraftIO"]),
        .target(name: "GraftTrain", dependencies: ["GraftAdapters", "GraftText", "GraftData", "CKernels"]),
        // Models trained on frozen feature tensors (key-value bottleneck, concept bottlenecks) and the continual-learning runner.
        .target(name: "GraftFeatureModels", dependencies: ["GraftTrain", "GraftFiles"]),
        .target(name: "Graft", dependencies: ["GraftTensor", "GraftAutodiff", "GraftNN", "GraftIO", "GraftText", "GraftAdapters", "GraftTrain",
                                              "GraftFeatureModels", "GraftData", "GraftFiles"]),
        // The HTTP server of `adapt serve`: many adapters over one frozen backbone, mixed-adapter batches.
        .target(name: "GraftServe", dependencies: [
            "Graft", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.embedInCode("Resources/openapi.json")]),
        .executableTarget(
            name: "adapt",
            dependencies: ["Graft", "GraftServe", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "GraftBench", dependencies: ["Graft", "AllocationCounter"], path: "Benchmarks/GraftBench"),
        // Counts the benchmark's heap allocations (interposes malloc in graft-bench only).
        .target(name: "AllocationCounter", path: "Benchmarks/AllocationCounter"),

        .testTarget(name: "GraftTensorTests", dependencies: ["GraftTensor", "CKernels"]),
        .testTarget(name: "GraftAutodiffTests", dependencies: ["GraftAutodiff", "GraftNN"]),
        .testTarget(name: "GraftAdaptersTests", dependencies: ["GraftAdapters", "GraftTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GraftNNTests", dependencies: ["GraftNN", "GraftIO", "GraftText", "GraftTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GraftIOTests", dependencies: ["GraftIO", "GraftFiles", "GraftTestSupport", "CHDF5", "CHDF5Shim"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "GraftTextTests", dependencies: ["GraftText", "GraftIO", "GraftTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain", "GraftTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GraftDataTests", dependencies: ["GraftData", "GraftTensor"]),
        .testTarget(name: "GraftFeatureModelsTests", dependencies: ["GraftFeatureModels", "GraftFiles", "GraftTestSupport"]),
        .testTarget(name: "GraftServeTests", dependencies: ["GraftServe", "GraftTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird")]),
        .testTarget(name: "AdaptTests", dependencies: ["adapt", "GraftIO", "GraftAdapters", "GraftTestSupport"]),
        // The fuzzing corpora (Tests/Fuzz/Corpus), read again on every test run.
        .testTarget(name: "FuzzCorpusTests", dependencies: ["Graft"]),
        // Shared helpers of the test targets (small models built in code).
        .target(name: "GraftTestSupport", dependencies: ["GraftIO", "GraftNN", "GraftText"], path: "Tests/GraftTestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
