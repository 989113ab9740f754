// swift-tools-version:5.5
// The Swift package of chord: the C module CChord over chord.h and libchord (found through
// pkg-config, `make install` writes chord.pc). Not built on chord's machines (no Swift toolchain
// there); the module map itself is checked with clang's module support (`make test-bindings`).
import PackageDescription

let package = Package(
    name: "Chord",
    products: [
        .library(name: "CChord", targets: ["CChord"]),
    ],
    targets: [
        .systemLibrary(
            name: "CChord",
            path: "Sources/CChord",
            pkgConfig: "chord",
            providers: [])
    ]
)
