import Foundation
import GraftFiles
import GraftIO
import GraftTensor
import Testing

/// Writes replace a file whole or not at all, and leave no temporary files behind.
@Suite struct AtomicWrites {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "graft-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func entries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory).sorted() }

    @Test func aFailedWriteKeepsThePreviousFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.txt"
        try writeAtomically(Data("first".utf8), to: path)
        try writeAtomically(Data("second".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try writeAtomically(to: path) { temporary in
                try Data("half".utf8).write(to: URL(fileURLWithPath: temporary))
                throw Interrupted()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        #expect(try entries() == ["out.txt"])
        let missing = directory + "/missing/out.txt"
        let error = #expect(throws: FileWriteError.self) { try writeAtomically(to: missing) { _ in } }
        // The error names the output the user asked for, and the temporary file beside it as what failed.
        #expect(error?.path == missing)
        #expect(error?.description.hasPrefix("cannot write \(missing): open of the temporary file \(missing).tmp-") == true)
    }

    /// Temporaries left by a killed writer are removed by the next write to the same path; a live writer's stay.
    @Test func staleTemporariesOfDeadWritersAreRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.txt"
        let dead = path + ".tmp-2147483646-0badf00d", live = path + ".tmp-\(getpid())-0badf00d", other = directory + "/x.tmp-2147483646-1"
        for file in [dead, live, other] { try Data("partial".utf8).write(to: URL(fileURLWithPath: file)) }
        try writeAtomically(Data("new".utf8), to: path)
        #expect(try entries() == ["out.txt", "out.txt.tmp-\(getpid())-0badf00d", "x.tmp-2147483646-1"])
    }

    /// A save that runs out of space (a file-size limit, set in a child process) fails with an error,
    /// and the previous file stays whole and readable.
    @Test func aFullDiskDuringASaveKeepsThePreviousFile() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        await #expect(processExitsWith: .success) {
            let path = NSTemporaryDirectory() + "graft-full-disk-\(getpid()).h5"
            defer { unlink(path) }
            try HDF5File.writeAtomically(to: path) { try $0.write(Tensor(shape: [2], scalars: [1, 2]), at: "w") }
            signal(SIGXFSZ, SIG_IGN)
            var limit = rlimit(rlim_cur: 100_000, rlim_max: 100_000)
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
            do {
                try HDF5File.writeAtomically(to: path) { try $0.write(Tensor(zeros: [500, 500]), at: "w") }
                exit(1)
            } catch {}
            let kept = try HDF5File(path: path).read("w")
            exit(kept == Tensor(shape: [2], scalars: [1, 2]) ? 0 : 2)
        }
    }

    @Test func aFailedHDF5WriteKeepsThePreviousFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/weights.h5"
        let tensor = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        try HDF5File.writeAtomically(to: path) { try $0.write(tensor, at: "w") }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try HDF5File.writeAtomically(to: path) { file in
                try file.write(Tensor(zeros: [2, 2]), at: "w")
                throw Interrupted()
            }
        }
        let file = try HDF5File(path: path)
        #expect(try file.read("w") == tensor)
        try file.finish()
        #expect(try entries() == ["weights.h5"])
    }
}
