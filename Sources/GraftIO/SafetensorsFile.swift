import Foundation
import GraftFiles
import GraftTensor

/// A Hugging Face `.safetensors` file, memory-mapped; tensors are converted to
/// `Float32` on demand by ``tensor(named:)``.
///
/// Layout: a little-endian `UInt64` header length `N`, `N` bytes of JSON mapping
/// each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an
/// optional `"__metadata__"` object of strings), then the data section; offsets
/// are relative to its start and the data is little-endian, row-major.
///
/// Every entry is checked when the file is opened: its byte range must lie in
/// the data section and match its shape and dtype, so a truncated or corrupt
/// file throws a ``SafetensorsError`` rather than crashing.
public struct SafetensorsFile: Sendable, TensorArchive {
    /// One tensor's header entry.
    private struct Entry: Sendable {
        let dtype: String
        let shape: [Int]
        /// Byte range within the whole file.
        let range: Range<Int>
    }

    /// Bytes per element of the dtypes in the safetensors specification.
    private static let elementSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
        "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]

    /// The path the file was read from.
    public let path: String
    /// The header's `__metadata__` strings (empty if it has none).
    public let metadata: [String: String]
    private let data: Data
    private let entries: [String: Entry]

    /// Every tensor's name, sorted.
    public var tensorNames: [String] { entries.keys.sorted() }

    /// Maps the file at `path` and validates its header.
    ///
    /// - Throws: ``SafetensorsError`` if the file is missing or unreadable, its
    ///   header is out of bounds or not the expected JSON, or a tensor's data is
    ///   inconsistent with its shape and dtype or lies past the end of the file.
    public init(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw SafetensorsError.fileNotFound(file: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafetensorsError.unreadable(file: path, reason: error.localizedDescription)
        }
        guard data.count >= 8 else {
            throw SafetensorsError.invalidHeader(
                file: path, detail: "the file has \(data.count) bytes; expected at least 8 for the header length")
        }
        let declared = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard declared <= UInt64(data.count - 8) else {
            throw SafetensorsError.headerOutOfBounds(file: path, headerLength: declared, fileSize: data.count)
        }
        let dataStart = 8 + Int(declared)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart))
        } catch {
            throw SafetensorsError.invalidHeader(file: path, detail: "the header is not valid JSON (\(error.localizedDescription))")
        }
        guard let header = json as? [String: Any] else {
            throw SafetensorsError.invalidHeader(file: path, detail: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let strings = value as? [String: String] else {
                    throw SafetensorsError.invalidHeader(file: path, detail: "__metadata__ is not an object of strings")
                }
                metadata = strings
                continue
            }
            func invalid(_ detail: String) -> SafetensorsError {
                .invalidEntry(file: path, tensor: name, detail: detail)
            }
            guard let fields = value as? [String: Any],
                  let dtype = fields["dtype"] as? String,
                  let shape = Self.integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }),
                  let offsets = Self.integers(fields["data_offsets"]), offsets.count == 2
            else {
                throw invalid("""
                    expected {"dtype": string, "shape": [non-negative integers], "data_offsets": [begin, end]}, \
                    found \(value)
                    """)
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else { throw invalid("data_offsets [\(begin), \(end)] are not an ascending pair") }
            if let size = Self.elementSizes[dtype] {
                let (count, overflow) = shape.reduce((1, false)) { product, dimension in
                    let (value, overflow) = product.0.multipliedReportingOverflow(by: dimension)
                    return (value, product.1 || overflow)
                }
                guard !overflow, count <= Int.max / size, count * size == end - begin else {
                    throw invalid("\(dtype) tensor of shape \(shape) needs \(overflow ? "too many" : String(count * size)) bytes; its data_offsets [\(begin), \(end)] span \(end - begin)")
                }
            }
            guard end <= data.count - dataStart else {
                throw SafetensorsError.truncated(file: path, tensor: name, end: end, dataSize: data.count - dataStart)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end))
        }
        // The tensors must tile the data section: in order, no two sharing a byte, no gap, nothing after.
        var covered = dataStart
        for (name, entry) in entries.sorted(by: { ($0.value.range.lowerBound, $0.key) < ($1.value.range.lowerBound, $1.key) }) {
            guard entry.range.lowerBound == covered else {
                let detail = entry.range.lowerBound < covered ? "overlaps the tensor before it" : "leaves a gap after the tensor before it"
                throw SafetensorsError.invalidHeader(file: path, detail: "the data of '\(name)' (data_offsets [\(entry.range.lowerBound - dataStart), "
                                                     + "\(entry.range.upperBound - dataStart)]) \(detail)")
            }
            covered = entry.range.upperBound
        }
        guard covered == data.count else {
            throw SafetensorsError.invalidHeader(file: path, detail: "\(data.count - covered) bytes after the last tensor's data belong to no tensor")
        }
        self.path = path
        self.metadata = metadata
        self.data = data
        self.entries = entries
    }

    /// A JSON array of integers, or nil.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        let integers = array.compactMap { $0 as? Int }
        return integers.count == array.count ? integers : nil
    }

    private func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else { throw SafetensorsError.tensorNotFound(file: path, tensor: name) }
        return entry
    }

    /// The shape of the tensor `name`; `[]` for a scalar.
    ///
    /// - Throws: ``SafetensorsError/tensorNotFound(file:tensor:)``.
    public func shape(of name: String) throws -> [Int] {
        try entry(name).shape
    }

    /// The tensor `name`, converted to `Float32`: F32 as is, F16 and BF16
    /// widened exactly, F64 rounded to nearest.
    ///
    /// - Throws: ``SafetensorsError/tensorNotFound(file:tensor:)``, or
    ///   ``SafetensorsError/unsupportedDType(file:tensor:dtype:)`` for other dtypes
    ///   (integers, booleans, 8-bit floats).
    public func tensor(named name: String) throws -> Tensor {
        let entry = try entry(name)
        let stored: StoredFloat
        switch entry.dtype {
        case "F32": stored = .float32
        case "F16": stored = .float16
        case "BF16": stored = .bfloat16
        case "F64": stored = .float64
        default: throw SafetensorsError.unsupportedDType(file: path, tensor: name, dtype: entry.dtype)
        }
        let scalars = data.withUnsafeBytes { file in
            stored.decode(UnsafeRawBufferPointer(rebasing: file[entry.range]), count: Tensor.count(of: entry.shape))
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }
}

extension SafetensorsFile {
    /// Writes `tensors` as F32 to a safetensors file, atomically (a temporary
    /// file renamed into place). The header JSON has sorted keys (`metadata`, if
    /// any, as `__metadata__`) and is padded with spaces so that the data section
    /// starts 8-byte aligned; the data follows in the order of the sorted names.
    ///
    /// - Throws: ``SafetensorsError/unwritable(file:reason:)``.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        guard tensors["__metadata__"] == nil else {
            throw SafetensorsError.unwritable(file: path, reason: "\"__metadata__\" is reserved and cannot name a tensor")
        }
        let names = tensors.keys.sorted()
        var header: [String: Any] = metadata.isEmpty ? [:] : ["__metadata__": metadata]
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + 4 * tensor.count]] as [String: Any]
            offset += 4 * tensor.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for name in names {
            tensors[name]!.scalars.map { $0.bitPattern.littleEndian }.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        do {
            try writeAtomically(to: path) { try data.write(to: URL(fileURLWithPath: $0)) }
        } catch {
            throw SafetensorsError.unwritable(file: path, reason: error.localizedDescription)
        }
    }
}

/// An error from reading or writing a safetensors file. Every case names the file.
public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file exists at `file`.
    case fileNotFound(file: String)
    /// `file` exists but could not be read.
    case unreadable(file: String, reason: String)
    /// The header length field says `headerLength` bytes, more than the `fileSize`-byte file holds after it.
    case headerOutOfBounds(file: String, headerLength: UInt64, fileSize: Int)
    /// The header is not the expected JSON.
    case invalidHeader(file: String, detail: String)
    /// The header entry of `tensor` is malformed or inconsistent.
    case invalidEntry(file: String, tensor: String, detail: String)
    /// The data of `tensor` ends at byte `end` of the data section, which has only `dataSize` bytes.
    case truncated(file: String, tensor: String, end: Int, dataSize: Int)
    /// The file has no tensor named `tensor`.
    case tensorNotFound(file: String, tensor: String)
    /// `tensor` is stored as `dtype`, which cannot be converted to `Float32`.
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// `file` could not be written.
    case unwritable(file: String, reason: String)

    /// A sentence naming the file, and what was expected and found.
    public var description: String {
        switch self {
        case .fileNotFound(let file):
            "safetensors file not found: \(file)"
        case .unreadable(let file, let reason):
            "cannot read safetensors file \(file): \(reason)"
        case .headerOutOfBounds(let file, let headerLength, let fileSize):
            "safetensors file \(file) is truncated or not safetensors: its header length is \(headerLength) bytes, but only \(max(fileSize - 8, 0)) bytes follow the length field"
        case .invalidHeader(let file, let detail):
            "safetensors file \(file) has an invalid header: \(detail)"
        case .invalidEntry(let file, let tensor, let detail):
            "tensor '\(tensor)' in safetensors file \(file) is invalid: \(detail)"
        case .truncated(let file, let tensor, let end, let dataSize):
            "safetensors file \(file) is truncated: tensor '\(tensor)' needs the data section's bytes up to \(end), but it has \(dataSize)"
        case .tensorNotFound(let file, let tensor):
            "no tensor '\(tensor)' in safetensors file \(file)"
        case .unsupportedDType(let file, let tensor, let dtype):
            "tensor '\(tensor)' in safetensors file \(file) has dtype \(dtype); expected F32, F16, BF16 or F64"
        case .unwritable(let file, let reason):
            "cannot write safetensors file \(file): \(reason)"
        }
    }
}
