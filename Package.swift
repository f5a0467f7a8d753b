// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "chatstore",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "ChatStore", targets: ["ChatStore"]),
        .library(name: "ChatStorePostgres", targets: ["ChatStorePostgres"]),
        .library(name: "ChatStoreZstd", targets: ["ChatStoreZstd"]),
        .executable(name: "chatstore", targets: ["chatstore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CChatStoreLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CChatStoreZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(
            name: "ChatStorePostgres",
            dependencies: [
                "CChatStoreLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ChatStoreZstd",
            dependencies: ["CChatStoreZstd"]
        ),
        .target(
            name: "ChatStore",
            dependencies: [
                "ChatStorePostgres",
                "ChatStoreZstd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            plugins: ["EmbedSQLPlugin"]
        ),
        // Migrations/*.sql and Queries/*.sql become Swift source at build time (not committed).
        .executableTarget(name: "EmbedSQLTool"),
        .plugin(name: "EmbedSQLPlugin", capability: .buildTool(), dependencies: ["EmbedSQLTool"]),
        .executableTarget(
            name: "chatstore",
            dependencies: [
                "ChatStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ChatStoreTestSupport",
            dependencies: ["ChatStore", "ChatStorePostgres"]
        ),
        .testTarget(
            name: "ChatStorePostgresTests",
            dependencies: ["ChatStorePostgres", "ChatStore", "ChatStoreTestSupport"]
        ),
        .testTarget(
            name: "ChatStoreZstdTests",
            dependencies: ["ChatStoreZstd", "ChatStore", "ChatStoreTestSupport"]
        ),
        .testTarget(
            name: "ChatStoreTests",
            dependencies: ["ChatStore", "ChatStorePostgres", "ChatStoreZstd", "ChatStoreTestSupport"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["ChatStore", "ChatStorePostgres", "ChatStoreTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
