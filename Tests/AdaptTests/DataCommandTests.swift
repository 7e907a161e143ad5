import Foundation
import GraftTestSupport
import Testing

/// Writes `path.sha256` (`sha256sum` format) as `adapt data prepare` does, so that the cache counts `path` as prepared.
func recordChecksum(of path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sha256sum", path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let checksum = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
    process.waitUntilExit()
    let name = URL(fileURLWithPath: path).lastPathComponent
    try "\(checksum)  \(name)\n".write(toFile: path + ".sha256", atomically: true, encoding: .utf8)
}

@Suite struct DataCommands {
    /// A prepared `fashion-mnist` file written byte by byte as `Datasets/README.md` describes it: an IDX
    /// file of unsigned bytes, dimensions [30, 786], rows (split, label, 784 pixels); two training images
    /// per class, then one test image per class.
    func fashionCache(in directory: String) throws -> String {
        let path = directory + "/data/fashion-mnist.idx"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let rows = (0..<30).map { i in (split: i < 20 ? 0 : 1, label: i < 20 ? i / 2 : i - 20) }
        var bytes: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 30, 0, 0, 3, 18]  // 786 = 3 * 256 + 18
        for (index, row) in rows.enumerated() {
            bytes += [UInt8(row.split), UInt8(row.label)] + (0..<784).map { UInt8((index * 7 + $0 * row.label) % 256) }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try recordChecksum(of: path)
        return directory
    }

    @Test func fashionMNISTIsADataRecipeTheContinualStreamReads() throws {
        let cache = try fashionCache(in: TinyBackbone.temporaryPath(""))
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let prepare = try runAdapt(["data", "prepare", "fashion-mnist", "--cache", cache])
        #expect(prepare.status == 0 && prepare.output.contains("fashion-mnist: already prepared"), "\(prepare.error)")
        let list = try runAdapt(["data", "list", "--cache", cache])
        #expect(list.output.contains("fashion-mnist    prepared"), "\(list.output)")
        let show = try runAdapt(["data", "show", "fashion-mnist", "--cache", cache, "--count", "3"])
        #expect(show.status == 0, "\(show.error)")
        #expect(show.output.hasPrefix("[train] 0 T-shirt/top\n[train] 0 T-shirt/top\n[train] 1 Trouser\n"))
        #expect(show.output.contains("Ankle boot          2         1         3") && show.output.contains("total              20        10        30"))
        let continual = try runAdapt(["continual", "--stream", "fashion-mnist", "--cache", cache, "--method", "linear", "--epochs", "1",
                                      "--train-per-class", "1", "--test-per-class", "1", "--unlabelled", "10", "--feature-size", "8"])
        #expect(continual.status == 0, "\(continual.error)")
        #expect(continual.output.contains("fashion-mnist: 10 classes in 5 tasks; 10 training and 10 test examples"), "\(continual.output)")
    }

    /// The real recipe on Debian's dataset-fashion-mnist (`Scripts/install-dependencies.sh` installs it).
    @Test
    func fashionMNISTIsPreparedFromTheDebianPackage() throws {
        let cache = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let prepare = try runAdapt(["data", "prepare", "fashion-mnist", "--cache", cache])
        #expect(prepare.status == 0, "\(prepare.error)")
        #expect(prepare.output.contains("sha256 6074721ee09d0d5ba41f96196e1173a20fa14ddb241110e0619303387456376c"), "\(prepare.output)")
        #expect(prepare.output.contains("Ankle boot      6,000     1,000     7,000") && prepare.output.contains("total          60,000    10,000    70,000"))
    }
}
