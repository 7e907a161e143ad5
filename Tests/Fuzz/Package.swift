// swift-tools-version: 6.0
// The fuzz target of Graft's readers, a package of its own so that the main build never sees it
// (it has no `main`: libFuzzer provides one). Build and run it with `Scripts/fuzz.sh FORMAT`.
import PackageDescription

let package = Package(
    name: "GraftFuzz",
    dependencies: [.package(name: "Graft", path: "../..")],
    targets: [
        .executableTarget(name: "graft-fuzz", dependencies: [.product(name: "Graft", package: "Graft")]),
    ],
    swiftLanguageModes: [.v6]
)
