// @preconcurrency: the tests read the C global H5T_STD_I32LE_g, only inside withHDF5.
@preconcurrency import CHDF5
import CHDF5Shim
import Foundation
@testable import GraftIO
import GraftTensor
import Testing

/// Runs `body` with a unique path in the temporary directory, then deletes the file.
private func withTemporaryFile<Result>(_ body: (String) async throws -> Result) async rethrows -> Result {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-io-\(UUID().uuidString).h5").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Creates `path` holding one tensor, `x`, of 1,000 elements.
private func writeSampleFile(_ path: String) throws {
    let file = try HDF5File(path: path, mode: .create)
    try file.write(Tensor(shape: [10, 100]) { Float($0) }, at: "x")
    file.close()
}

/// Runs raw HDF5 C calls on `path` (opened read-write) under the library's lock,
/// to build files the Swift API deliberately cannot write.
private func withRawFile(_ path: String, _ body: (hid_t) -> Void) throws {
    try withHDF5 {
        let file = H5Fopen(path, graft_h5f_acc_rdwr(), graft_h5p_default())
        try #require(file >= 0)
        body(file)
        H5Fclose(file)
    }
}

@Suite struct HDF5FileTests {
    @Test func float32RoundTripsAtDottedAndGroupedPaths() async throws {
        try await withTemporaryFile { path in
            let dotted = Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-8, -7e20])
            let grouped = Tensor(shape: [4], scalars: [0.1, 0.2, 0.3, 0.4])
            let writer = try HDF5File(path: path, mode: .create)
            try writer.write(dotted, at: "encoder.layer.0.attention.self.query.weight")
            try writer.write(grouped, at: "weights/encoder/layer")
            writer.close()

            let file = try HDF5File(path: path)
            defer { file.close() }
            #expect(try file.read("encoder.layer.0.attention.self.query.weight") == dotted)
            #expect(try file.read("weights/encoder/layer") == grouped)
            #expect(try file.read("/weights/encoder/layer") == grouped)
            #expect(try file.shape(of: "encoder.layer.0.attention.self.query.weight") == [2, 3])
            #expect(try file.dataType(of: "weights/encoder/layer") == .float32)
            #expect(try file.datasetNames() == ["encoder.layer.0.attention.self.query.weight", "weights/encoder/layer"])
            #expect(file.contains("weights/encoder/layer"))
            #expect(!file.contains("weights/encoder"))
            #expect(!file.contains("weights/missing/layer"))
            #expect(!file.contains("encoder"))
        }
    }

    @Test func scalarsAndEmptyTensorsRoundTrip() async throws {
        try await withTemporaryFile { path in
            let scalar = Tensor(scalar: 3.25)
            let empty = Tensor(shape: [0, 4], scalars: [])
            let file = try HDF5File(path: path, mode: .create)
            defer { file.close() }
            try file.write(scalar, at: "scalar")
            try file.write(empty, at: "empty")
            try file.write(empty, at: "empty16", as: .float16)
            try file.write(scalar, at: "scalar16", as: .float16)
            #expect(try file.read("scalar") == scalar)
            #expect(try file.shape(of: "scalar") == [])
            #expect(try file.read("empty") == empty)
            #expect(try file.read("empty16") == empty)
            #expect(try file.read("scalar16") == scalar)
        }
    }

    @Test func float16RoundTripsWithinHalfPrecision() async throws {
        try await withTemporaryFile { path in
            // Exactly representable in binary16: zero, halves, the largest finite, smallest normal and subnormal.
            let exact: [Float] = [0, 1, -2.5, 0.5, 65504, -0x1p-14, 0x1p-24, 1000.5]
            let inexact: [Float] = [0.1, 3.14159265, -1234.567, 1e-3, 7e-6]
            let file = try HDF5File(path: path, mode: .create)
            defer { file.close() }
            try file.write(Tensor(shape: [2, 4], scalars: exact), at: "half/exact", as: .float16)
            try file.write(Tensor(shape: [5], scalars: inexact), at: "half/inexact", as: .float16)

            #expect(try file.dataType(of: "half/exact") == .float16)
            #expect(try file.read("half/exact") == Tensor(shape: [2, 4], scalars: exact))
            let read = try file.read("half/inexact", expectedShape: [5]).scalars
            for (value, original) in zip(read, inexact) {
                #expect(value == Float(Float16(original)))
                // Half precision keeps 11 significant bits; subnormals keep an absolute 2^-25.
                #expect(abs(value - original) <= max(abs(original) * 0x1p-11, 0x1p-25))
            }
        }
    }

    @Test func overwritingReplacesTheDataset() async throws {
        try await withTemporaryFile { path in
            let file = try HDF5File(path: path, mode: .create)
            defer { file.close() }
            try file.write(Tensor(shape: [3], scalars: [1, 2, 3]), at: "a/b")
            let replacement = Tensor(shape: [2, 2], scalars: [4, 5, 6, 7])
            try file.write(replacement, at: "a/b", as: .float16)
            #expect(try file.read("a/b") == replacement)
            #expect(try file.datasetNames() == ["a/b"])

            let error = try #require(throws: HDF5Error.self) { try file.write(replacement, at: "a") }
            #expect(error.description.contains("'a'"))
        }
    }

    @Test func stringAttributesRoundTripUTF8() async throws {
        try await withTemporaryFile { path in
            let config = #"{"language": "Chichewa: mawu ▁ água", "layers": 12}"#
            let writer = try HDF5File(path: path, mode: .create)
            try writer.write(Tensor(scalar: 1), at: "weights/w")
            try writer.setAttribute("stale", named: "config")
            try writer.setAttribute(config, named: "config")
            try writer.setAttribute("", named: "empty")
            try writer.setAttribute("Chichewa: mawu ▁ água", named: "note", at: "weights/w")
            writer.close()

            let file = try HDF5File(path: path, mode: .update)
            defer { file.close() }
            #expect(try file.attribute(named: "config") == config)
            #expect(try file.attribute(named: "empty") == "")
            #expect(try file.attribute(named: "note", at: "weights/w") == "Chichewa: mawu ▁ água")
            #expect(try file.attributeNames() == ["config", "empty"])
            #expect(try file.attributeNames(at: "weights/w") == ["note"])

            let missing = try #require(throws: HDF5Error.self) { try file.attribute(named: "vocab") }
            #expect(missing == .attributeNotFound(file: path, object: "/", attribute: "vocab"))
            let noObject = try #require(throws: HDF5Error.self) { try file.setAttribute("x", named: "y", at: "nope") }
            #expect(noObject == .objectNotFound(file: path, object: "nope"))
        }
    }

    /// libhdf5 1.10 loops forever loading a global heap collection whose free-space object
    /// has size 0 (found by fuzzing); the file is refused before libhdf5 reads it.
    @Test func aGlobalHeapThatWouldMakeLibHDF5LoopIsRefused() async throws {
        try await withTemporaryFile { path in
            let writer = try HDF5File(path: path, mode: .create)
            try writer.setAttribute(#"{"layers": 12}"#, named: "config")
            writer.close()
            #expect(try HDF5File(path: path).attribute(named: "config") == #"{"layers": 12}"#)

            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let start = try #require((0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == Array("GCOL".utf8) })
            var object = start + 16  // walk to the free-space object (index 0) and give it size 0
            while bytes[object] != 0 || bytes[object + 1] != 0 {
                let size = (0..<8).reduce(0) { $0 | Int(bytes[object + 8 + $1]) << (8 * $1) }
                object += 16 + (size + 7) / 8 * 8
            }
            for i in 0..<8 { bytes[object + 8 + i] = 0 }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path) }
            #expect(error == .cannotOpen(file: path, reason: "corrupt global heap (variable-length strings) at byte \(object): "
                + "object 0 of 0 bytes does not fit its collection of 4096"))
        }
    }

    /// libhdf5 1.10 trusts the name, datatype and dataspace sizes of an attribute message and reads
    /// past its buffer when they exceed the message (found by fuzzing); the file is refused first.
    @Test func anAttributeMessageThatWouldOverrunLibHDF5IsRefused() async throws {
        try await withTemporaryFile { path in
            let writer = try HDF5File(path: path, mode: .create)
            try writer.setAttribute("12", named: "layers")
            writer.close()
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let name = Array("layers\0".utf8)
            let start = try #require((0..<(bytes.count - name.count)).first { Array(bytes[$0..<($0 + name.count)]) == name })
            let message = start - 8  // version 1: version, reserved, then the name's size (2 bytes), the datatype's and the dataspace's
            try #require(bytes[message] == 1 && bytes[message + 2] == UInt8(name.count))
            let length = Int(bytes[message - 6]) | Int(bytes[message - 5]) << 8  // the message header's size field
            bytes[message + 3] = 1  // a name of 263 bytes
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path) }
            #expect(error.description.contains("corrupt attribute message of \(length) bytes: a name, datatype and dataspace of 263,"))
            #expect(error.description.hasSuffix("do not fit at byte \(message)"))
        }
    }

    /// A dataspace that declares more elements than the file stores is refused before allocating
    /// them (found by fuzzing: a few corrupt dimensions asked for gigabytes).
    @Test func aDatasetLargerThanItsFileIsRefusedBeforeAllocating() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)  // x: [10, 100]
            func dimensions(_ rows: Int, _ columns: Int) -> [UInt8] {
                [rows, columns].flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
            }
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let stored = dimensions(10, 100), declared = dimensions(10, 1_000_000)
            let places = (0...(bytes.count - stored.count)).filter { Array(bytes[$0..<($0 + stored.count)]) == stored }
            try #require(!places.isEmpty)  // the dimensions, and the maximum dimensions after them
            for place in places { bytes.replaceSubrange(place..<(place + stored.count), with: declared) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let file = try HDF5File(path: path)
            let error = try #require(throws: HDF5Error.self) { try file.read("x") }
            #expect(error == .failed(file: path, object: "x", operation: "read dataset",
                                     reason: "its 10000000 elements of 4 bytes (shape [10, 1000000]) do not fit in the \(bytes.count)-byte file"))
        }
    }

    /// Structures Graft never writes are refused before libhdf5 parses them.
    @Test func aSuperblockVersionGraftDoesNotWriteIsRefused() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[8] = 2
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path) }
            #expect(error == .cannotOpen(file: path, reason: "corrupt superblock: version 2 (Graft reads versions 0 and 1, what libhdf5 "
                + "writes by default) at byte 8"))
        }
    }

    @Test func fixedLengthStringAttributesAreRead() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            try withRawFile(path) { file in
                for (name, text, padding) in [("nul", "hello", H5T_STR_NULLPAD), ("space", "hi   ", H5T_STR_SPACEPAD)] {
                    let type = H5Tcopy(graft_h5t_c_s1())
                    H5Tset_size(type, 5)
                    H5Tset_strpad(type, padding)
                    let space = H5Screate(H5S_SCALAR)
                    let attribute = H5Acreate2(file, name, type, space, graft_h5p_default(), graft_h5p_default())
                    #expect(H5Awrite(attribute, type, text) >= 0)
                    H5Aclose(attribute)
                    H5Sclose(space)
                    H5Tclose(type)
                }
            }
            let file = try HDF5File(path: path)
            defer { file.close() }
            #expect(try file.attribute(named: "nul") == "hello")
            #expect(try file.attribute(named: "space") == "hi")
        }
    }

    @Test func summaryListsDatasetsAndRootStringAttributes() async throws {
        try await withTemporaryFile { path in
            let file = try HDF5File(path: path, mode: .create)
            defer { file.close() }
            try file.write(Tensor(zeros: [2, 3]), at: "encoder.weight")
            try file.write(Tensor(zeros: [3]), at: "head/bias", as: .float16)
            try file.setAttribute(#"{"d_model": 3}"#, named: "config")
            let summary = try file.summary()
            #expect(summary.datasets == [
                HDF5Summary.Dataset(name: "encoder.weight", shape: [2, 3], dataType: .float32),
                HDF5Summary.Dataset(name: "head/bias", shape: [3], dataType: .float16),
            ])
            #expect(summary.attributes == ["config": #"{"d_model": 3}"#])
            #expect(summary.description.contains("head/bias       float16  [3]"))
            #expect(summary.description.contains("9 elements"))
        }
    }

    @Test func missingFileErrorNamesThePath() async throws {
        try await withTemporaryFile { path in
            for mode in [HDF5File.Mode.read, .update] {
                let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path, mode: mode) }
                #expect(error == .fileNotFound(file: path))
                #expect(error.description.contains(path))
            }
            let directory = try #require(throws: HDF5Error.self) {
                try HDF5File(path: path + "/missing-directory/x.h5", mode: .create)
            }
            #expect(directory.description.contains("missing-directory/x.h5"))
        }
    }

    @Test func nonHDF5FileIsRejected() async throws {
        try await withTemporaryFile { path in
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<4096).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path) }
            #expect(error == .notHDF5(file: path))
            #expect(error.description.contains(path))
        }
    }

    @Test func truncatedFileThrowsInsteadOfCrashing() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(size / 2))
            try handle.close()
            let error = try #require(throws: HDF5Error.self) {
                let file = try HDF5File(path: path)
                defer { file.close() }
                _ = try file.read("x")
            }
            #expect(error.description.contains(path))
        }
    }

    @Test func missingDatasetErrorNamesTheDataset() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            let file = try HDF5File(path: path)
            defer { file.close() }
            for name in ["nope/x", "x/y", "encoder.layer.9.weight"] {
                let error = try #require(throws: HDF5Error.self) { try file.read(name) }
                #expect(error == .datasetNotFound(file: path, dataset: name))
                #expect(error.description.contains(name))
            }
        }
    }

    @Test func shapeMismatchNamesBothShapes() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            let file = try HDF5File(path: path)
            defer { file.close() }
            #expect(try file.read("x", expectedShape: [10, 100]).shape == [10, 100])
            let error = try #require(throws: HDF5Error.self) { try file.read("x", expectedShape: [100, 10]) }
            #expect(error == .shapeMismatch(file: path, dataset: "x", expected: [100, 10], found: [10, 100]))
            #expect(error.description.contains("[100, 10]") && error.description.contains("[10, 100]"))
        }
    }

    @Test func integerDatasetIsAnUnsupportedType() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            try withRawFile(path) { file in
                H5open()
                let dimensions: [hsize_t] = [3]
                let space = H5Screate_simple(1, dimensions, nil)
                let dataset = H5Dcreate2(
                    file, "ids", H5T_STD_I32LE_g, space, graft_h5p_default(), graft_h5p_default(), graft_h5p_default())
                let values: [Int32] = [1, 2, 3]
                #expect(H5Dwrite(dataset, H5T_STD_I32LE_g, graft_h5s_all(), graft_h5s_all(), graft_h5p_default(), values) >= 0)
                H5Dclose(dataset)
                H5Sclose(space)
            }
            let file = try HDF5File(path: path)
            defer { file.close() }
            #expect(try file.dataType(of: "ids") == .integer(bits: 32, signed: true))
            let error = try #require(throws: HDF5Error.self) { try file.read("ids") }
            #expect(error == .unsupportedType(file: path, object: "ids", expected: "float32, float16 or float64", found: "int32"))
        }
    }

    /// A dataset that declares more elements than memory holds (10^7 x 10^7, never written) is refused before allocating.
    @Test func aHugeDeclaredDatasetIsRefusedBeforeAllocation() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            try withRawFile(path) { file in
                H5open()
                let dimensions: [hsize_t] = [10_000_000, 10_000_000]
                let space = H5Screate_simple(2, dimensions, nil)
                let dataset = H5Dcreate2(
                    file, "huge", H5T_IEEE_F32LE_g, space, graft_h5p_default(), graft_h5p_default(), graft_h5p_default())
                #expect(dataset >= 0)
                H5Dclose(dataset)
                H5Sclose(space)
            }
            let file = try HDF5File(path: path)
            defer { file.close() }
            let error = try #require(throws: HDF5Error.self) { try file.read("huge") }
            #expect(error.description.contains("fits in memory") && error.description.contains("[10000000, 10000000]"), "\(error)")
        }
    }

    @Test func writingToAReadOnlyOrClosedFileThrows() async throws {
        try await withTemporaryFile { path in
            try writeSampleFile(path)
            let file = try HDF5File(path: path)
            let readOnly = try #require(throws: HDF5Error.self) { try file.write(Tensor(scalar: 1), at: "y") }
            #expect(readOnly.description.contains("'y'"))
            #expect(!file.contains("y"))
            file.close()
            file.close()
            #expect(throws: HDF5Error.closed(file: path)) { try file.read("x") }
            #expect(!file.contains("x"))
        }
    }

    @Test func concurrentUseFromManyTasksIsSafe() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    try await withTemporaryFile { path in
                        let file = try HDF5File(path: path, mode: .create)
                        defer { file.close() }
                        for index in 0..<25 {
                            let tensor = Tensor(shape: [4, 8]) { Float(task * 100 + index * 32 + $0) }
                            try file.write(tensor, at: "layer\(index)/weight", as: index.isMultiple(of: 2) ? .float32 : .float16)
                            try file.setAttribute("task \(task)", named: "owner", at: "layer\(index)")
                            #expect(try file.read("layer\(index)/weight") == tensor)
                        }
                        #expect(try file.datasetNames().count == 25)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
