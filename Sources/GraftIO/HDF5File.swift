import CHDF5
import CHDF5Shim
import Foundation
import GraftFiles
import GraftTensor

/// Serializes every HDF5 call: HDF5 is only thread-safe when built with --enable-threadsafe.
private let hdf5Lock = NSLock()

/// Tells HDF5 not to close its files again when the process exits: after a close
/// that failed (a full disk), libhdf5's exit handler crashes closing that file a
/// second time. Graft closes every file itself; nothing is left to flush at exit.
private let hdf5WithoutExitHandler: Void = { H5dont_atexit() }()

/// Runs `body` holding the process-wide HDF5 lock. Not reentrant: `body` must not call it again.
func withHDF5<Result>(_ body: () throws -> Result) rethrows -> Result {
    try hdf5Lock.withLock {
        hdf5WithoutExitHandler
        // Thread-safe HDF5 builds (such as Debian's) keep one error stack per thread,
        // so stop it printing to stderr on whichever thread is running now.
        graft_h5_silence_errors()
        return try body()
    }
}

/// The most specific message on HDF5's error stack, describing the call that just failed.
private func hdf5Message() -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    graft_h5_error_message(&buffer, buffer.count)
    let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(separator: "\n").joined()
    // A failed system call comes with HDF5's internals (time, buffer address, byte counts): keep the system's reason.
    if let start = message.range(of: "error message = '"), let end = message[start.upperBound...].firstIndex(of: "'") {
        return message.prefix { $0 != ":" } + ": " + message[start.upperBound..<end]
    }
    return message.isEmpty ? "unknown HDF5 error" : message
}

/// How tensor elements are stored on disk by `HDF5File.write`.
public enum StorageType: Sendable {
    /// IEEE single precision, little-endian (numpy `<f4`).
    case float32
    /// IEEE half precision, little-endian (numpy `<f2`): rounded to nearest, beyond ±65504 infinite.
    case float16
}

/// The element type of an HDF5 dataset or attribute, as reported by `HDF5File.dataType(of:)`.
public enum HDF5DataType: Equatable, Sendable, CustomStringConvertible {
    /// IEEE half precision.
    case float16
    /// IEEE single precision.
    case float32
    /// IEEE double precision.
    case float64
    /// A two's-complement or unsigned integer of `bits` bits.
    case integer(bits: Int, signed: Bool)
    /// A fixed- or variable-length string.
    case string
    /// Anything else (compound, enum, bfloat16, ...), described in words.
    case other(String)

    /// The numpy-style name, such as `float16`, `int32` or `uint8`.
    public var description: String {
        switch self {
        case .float16: "float16"
        case .float32: "float32"
        case .float64: "float64"
        case .integer(let bits, let signed): "\(signed ? "" : "u")int\(bits)"
        case .string: "string"
        case .other(let name): name
        }
    }

    /// Classifies an HDF5 datatype id.
    init(hdf5 type: hid_t) {
        let bits = H5Tget_size(type) * 8
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            var (signBit, exponentBit, exponentSize, mantissaBit, mantissaSize) = (0, 0, 0, 0, 0)
            H5Tget_fields(type, &signBit, &exponentBit, &exponentSize, &mantissaBit, &mantissaSize)
            switch (bits, mantissaSize) {
            case (16, 10): self = .float16
            case (16, 7): self = .other("bfloat16")
            case (32, 23): self = .float32
            case (64, 52): self = .float64
            default: self = .other("\(bits)-bit float with a \(mantissaSize)-bit mantissa")
            }
        case H5T_INTEGER: self = .integer(bits: bits, signed: H5Tget_sign(type) != H5T_SGN_NONE)
        case H5T_STRING: self = .string
        case H5T_BITFIELD: self = .other("bitfield")
        case H5T_OPAQUE: self = .other("opaque")
        case H5T_COMPOUND: self = .other("compound")
        case H5T_REFERENCE: self = .other("reference")
        case H5T_ENUM: self = .other("enum")
        case H5T_VLEN: self = .other("variable-length sequence")
        case H5T_ARRAY: self = .other("array")
        default: self = .other("unknown HDF5 type class")
        }
    }
}

/// A listing of an HDF5 file's datasets and root string attributes (used by `adapt info`).
public struct HDF5Summary: Sendable, CustomStringConvertible {
    /// One dataset of the file.
    public struct Dataset: Equatable, Sendable {
        /// Full path without a leading "/".
        public let name: String
        /// Dimensions, outermost first; `[]` for a scalar.
        public let shape: [Int]
        /// Element type.
        public let dataType: HDF5DataType
    }

    /// Path of the summarized file.
    public let file: String
    /// All datasets, sorted by name.
    public let datasets: [Dataset]
    /// The root group's string attributes by name; attributes of other types are left out.
    public let attributes: [String: String]

    /// One line per dataset (`name  dtype  [shape]`), then one per root string
    /// attribute (values longer than 300 characters are cut, with their size).
    public var description: String {
        let elements = datasets.reduce(0) { $0 + Tensor.count(of: $1.shape) }
        var lines = ["\(file): \(datasets.count) datasets, \(elements) elements"]
        let width = datasets.map(\.name.count).max() ?? 0
        for dataset in datasets {
            let padding = String(repeating: " ", count: width - dataset.name.count)
            lines.append("  \(dataset.name)\(padding)  \(dataset.dataType)  \(dataset.shape)")
        }
        for name in attributes.keys.sorted() {
            let value = attributes[name] ?? ""
            let shown = value.count <= 300 ? value : value.prefix(300) + "… (\(value.utf8.count) bytes)"
            lines.append("  @\(name) = \(shown)")
        }
        return lines.joined(separator: "\n")
    }
}

/// An open HDF5 file holding tensors as datasets and strings as attributes.
///
/// Dataset names are paths: "weights/encoder/layer" lives in group "weights/encoder"
/// (created on write as needed), while a dotted name such as
/// "encoder.layer.0.attention.self.query.weight" is a single dataset in the root group.
/// Every HDF5 call holds one process-wide lock, so instances may be used from any thread.
public final class HDF5File: @unchecked Sendable {
    /// How to open the file.
    public enum Mode: Sendable {
        /// Open an existing file read-only.
        case read
        /// Create a new file, replacing any existing one.
        case create
        /// Open an existing file for reading and writing.
        case update
    }

    /// Path the file was opened with.
    public let path: String
    /// The open file's id, nil once closed. Only accessed while holding the HDF5 lock.
    private var id: hid_t?

    /// Opens or creates the HDF5 file at `path`.
    ///
    /// - Throws: `HDF5Error.fileNotFound`, `.notHDF5` or `.cannotOpen` (e.g. a truncated file).
    public init(path: String, mode: Mode = .read) throws {
        self.path = path
        id = try withHDF5 {
            if mode == .create {
                let id = H5Fcreate(path, graft_h5f_acc_trunc(), graft_h5p_default(), graft_h5p_default())
                guard id >= 0 else { throw HDF5Error.cannotOpen(file: path, reason: hdf5Message()) }
                return id
            }
            guard FileManager.default.fileExists(atPath: path) else { throw HDF5Error.fileNotFound(file: path) }
            let isHDF5 = graft_h5f_is_hdf5(path)
            guard isHDF5 != 0 else { throw HDF5Error.notHDF5(file: path) }
            if isHDF5 > 0 { try HDF5Structure.check(path) }
            let flags = mode == .read ? graft_h5f_acc_rdonly() : graft_h5f_acc_rdwr()
            let id = isHDF5 < 0 ? hid_t(isHDF5) : H5Fopen(path, flags, graft_h5p_default())
            guard id >= 0 else { throw HDF5Error.cannotOpen(file: path, reason: hdf5Message()) }
            return id
        }
    }

    deinit { close() }

    /// Writes a new HDF5 file at `path` atomically: `body` fills it, then it is
    /// closed (checked: a full disk is an error here), synced and renamed over
    /// `path`. On any failure `path` keeps its previous contents.
    public static func writeAtomically(to path: String, _ body: (HDF5File) throws -> Void) throws {
        try GraftFiles.writeAtomically(to: path) { temporary in
            let file = try HDF5File(path: temporary, mode: .create)
            do { try body(file) } catch {
                file.close()
                throw error
            }
            try file.finish()
        }
    }

    /// Flushes and closes the file, throwing if HDF5 cannot write what it holds
    /// (`close()` ignores that). A file being written ends with this.
    public func finish() throws {
        try withHDF5 {
            guard let id else { return }
            self.id = nil
            guard H5Fclose(id) >= 0 else { throw HDF5Error.failed(file: path, object: "/", operation: "close", reason: hdf5Message()) }
        }
    }

    /// Flushes and closes the file. Later calls do nothing; other methods then throw `HDF5Error.closed`.
    public func close() {
        withHDF5 {
            if let id { H5Fclose(id) }
            id = nil
        }
    }

    /// Writes `tensor` as the dataset `name`, replacing any dataset already there.
    ///
    /// Missing groups along a "/"-separated path are created; dots are ordinary characters.
    /// A rank-0 tensor becomes a scalar dataset.
    public func write(_ tensor: Tensor, at name: String, as storage: StorageType = .float32) throws {
        try withHDF5 {
            let file = try openID()
            var parent = ""
            for component in name.split(separator: "/").dropLast() {
                parent += parent.isEmpty ? component : "/" + component
                guard graft_h5_object_kind(file, parent) != GRAFT_H5_DATASET else {
                    throw HDF5Error.failed(
                        file: path, object: name, operation: "write dataset",
                        reason: "'\(parent)' is a dataset, not a group")
                }
            }
            switch graft_h5_object_kind(file, name) {
            case GRAFT_H5_MISSING: break
            case GRAFT_H5_DATASET: try check(H5Ldelete(file, name, graft_h5p_default()), "replace dataset", name)
            default:
                throw HDF5Error.failed(
                    file: path, object: name, operation: "write dataset",
                    reason: "a group or other non-dataset object already has that name")
            }
            switch storage {
            case .float32:
                try create(name, in: file, shape: tensor.shape, fileType: graft_h5t_ieee_f32le(),
                           memoryType: graft_h5t_native_float(), elements: tensor.scalars)
            case .float16:
                let fileType = try float16Type(base: graft_h5t_ieee_f32le(), name)
                defer { H5Tclose(fileType) }
                let memoryType = try float16Type(base: graft_h5t_native_float(), name)
                defer { H5Tclose(memoryType) }
                try create(name, in: file, shape: tensor.shape, fileType: fileType, memoryType: memoryType,
                           elements: tensor.scalars.map { Float16($0) })
            }
        }
    }

    /// Reads the dataset `name`, converting float16 and float64 elements to `Float`.
    ///
    /// - Throws: `HDF5Error.datasetNotFound`, or `.unsupportedType` for non-float data.
    public func read(_ name: String) throws -> Tensor {
        try withHDF5 { try readTensor(name, expectedShape: nil) }
    }

    /// Reads the dataset `name` after checking that its shape is `expectedShape`.
    ///
    /// - Throws: `HDF5Error.shapeMismatch` naming both shapes, before any data is read.
    public func read(_ name: String, expectedShape: [Int]) throws -> Tensor {
        try withHDF5 { try readTensor(name, expectedShape: expectedShape) }
    }

    /// The shape of the dataset `name`; `[]` for a scalar.
    public func shape(of name: String) throws -> [Int] {
        try withHDF5 {
            let dataset = try openDataset(name)
            defer { H5Dclose(dataset) }
            return try shape(ofDataset: dataset, name)
        }
    }

    /// The element type of the dataset `name`.
    public func dataType(of name: String) throws -> HDF5DataType {
        try withHDF5 {
            let dataset = try openDataset(name)
            defer { H5Dclose(dataset) }
            return try dataType(ofDataset: dataset, name)
        }
    }

    /// Full paths of all datasets, without a leading "/", sorted.
    public func datasetNames() throws -> [String] {
        try withHDF5 { try allDatasetNames() }
    }

    /// Whether a dataset named `name` exists (false for groups, and once closed).
    public func contains(_ name: String) -> Bool {
        withHDF5 { id.map { graft_h5_object_kind($0, name) == GRAFT_H5_DATASET } ?? false }
    }

    /// Sets the string attribute `name` on the group or dataset `object`, replacing any old value.
    ///
    /// The value is stored as a scalar variable-length UTF-8 string, which h5py reads as `str`.
    public func setAttribute(_ value: String, named name: String, at object: String = "/") throws {
        try withHDF5 {
            let file = try openID()
            try requireObject(object, in: file)
            let what = "\(object)@\(name)"
            if H5Aexists_by_name(file, object, name, graft_h5p_default()) > 0 {
                try check(H5Adelete_by_name(file, object, name, graft_h5p_default()), "replace attribute", what)
            }
            let type = try variableStringType(cset: H5T_CSET_UTF8, what)
            defer { H5Tclose(type) }
            let space = try check(H5Screate(H5S_SCALAR), "create attribute", what)
            defer { H5Sclose(space) }
            let defaults = graft_h5p_default()
            let attribute = try check(
                H5Acreate_by_name(file, object, name, type, space, defaults, defaults, defaults), "create attribute", what)
            defer { H5Aclose(attribute) }
            try value.withCString { characters in
                var pointer: UnsafePointer<CChar>? = characters
                try check(H5Awrite(attribute, type, &pointer), "write attribute", what)
            }
        }
    }

    /// Reads the string attribute `name` of the group or dataset `object`.
    ///
    /// Accepts variable- and fixed-length scalar strings (padding removed).
    /// - Throws: `HDF5Error.attributeNotFound`, or `.unsupportedType` for non-string attributes.
    public func attribute(named name: String, at object: String = "/") throws -> String {
        try withHDF5 { try stringAttribute(name, at: object) }
    }

    /// Names of the attributes of the group or dataset `object`, sorted.
    public func attributeNames(at object: String = "/") throws -> [String] {
        try withHDF5 { try allAttributeNames(at: object) }
    }

    /// Every dataset with its shape and type, plus the root string attributes (such as "config").
    public func summary() throws -> HDF5Summary {
        try withHDF5 {
            let datasets = try allDatasetNames().map { name in
                let dataset = try openDataset(name)
                defer { H5Dclose(dataset) }
                return HDF5Summary.Dataset(
                    name: name, shape: try shape(ofDataset: dataset, name), dataType: try dataType(ofDataset: dataset, name))
            }
            var attributes: [String: String] = [:]
            for name in try allAttributeNames(at: "/") {
                attributes[name] = try? stringAttribute(name, at: "/")
            }
            return HDF5Summary(file: path, datasets: datasets, attributes: attributes)
        }
    }

    // MARK: - Helpers; all run while holding the HDF5 lock.

    /// Returns `result`, or throws `HDF5Error.failed` with HDF5's message when it is negative.
    @discardableResult
    private func check<Result: BinaryInteger>(_ result: Result, _ operation: String, _ object: String) throws -> Result {
        guard result >= 0 else {
            throw HDF5Error.failed(file: path, object: object, operation: operation, reason: hdf5Message())
        }
        return result
    }

    private func openID() throws -> hid_t {
        guard let id else { throw HDF5Error.closed(file: path) }
        return id
    }

    private func openDataset(_ name: String) throws -> hid_t {
        let file = try openID()
        guard graft_h5_object_kind(file, name) == GRAFT_H5_DATASET else {
            throw HDF5Error.datasetNotFound(file: path, dataset: name)
        }
        return try check(H5Dopen2(file, name, graft_h5p_default()), "open dataset", name)
    }

    private func requireObject(_ object: String, in file: hid_t) throws {
        let kind = graft_h5_object_kind(file, object)
        guard kind == GRAFT_H5_GROUP || kind == GRAFT_H5_DATASET else {
            throw HDF5Error.objectNotFound(file: path, object: object)
        }
    }

    private func create<Element>(
        _ name: String, in file: hid_t, shape: [Int], fileType: hid_t, memoryType: hid_t, elements: [Element]
    ) throws {
        let dimensions = shape.map { hsize_t($0) }
        let space = try check(
            shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), dimensions, nil),
            "create dataspace for", name)
        defer { H5Sclose(space) }
        let linkList = try check(graft_h5p_create_intermediate_lcpl(), "create groups for", name)
        defer { H5Pclose(linkList) }
        let dataset = try check(
            H5Dcreate2(file, name, fileType, space, linkList, graft_h5p_default(), graft_h5p_default()),
            "create dataset", name)
        defer { H5Dclose(dataset) }
        guard !elements.isEmpty else { return }
        try elements.withUnsafeBytes { bytes in
            _ = try check(
                H5Dwrite(dataset, memoryType, graft_h5s_all(), graft_h5s_all(), graft_h5p_default(), bytes.baseAddress),
                "write dataset", name)
        }
    }

    private func readTensor(_ name: String, expectedShape: [Int]?) throws -> Tensor {
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        let shape = try shape(ofDataset: dataset, name)
        if let expectedShape, expectedShape != shape {
            throw HDF5Error.shapeMismatch(file: path, dataset: name, expected: expectedShape, found: shape)
        }
        let count = try elementCount(of: shape, name)
        try checkStorage(of: dataset, count: count, shape: shape, name)
        switch try dataType(ofDataset: dataset, name) {
        case .float32, .float64:
            let scalars: [Float] = try readElements(dataset, name, memoryType: graft_h5t_native_float(), count: count)
            return Tensor(shape: shape, scalars: scalars)
        case .float16:
            let memoryType = try float16Type(base: graft_h5t_native_float(), name)
            defer { H5Tclose(memoryType) }
            let halves: [Float16] = try readElements(dataset, name, memoryType: memoryType, count: count)
            return Tensor(shape: shape, scalars: halves.map { Float($0) })
        case let found:
            throw HDF5Error.unsupportedType(
                file: path, object: name, expected: "float32, float16 or float64", found: found.description)
        }
    }

    /// The number of elements of a dataset of `shape`, checked before anything is allocated: the
    /// product must not overflow and its float32 copy must fit in this machine's memory.
    private func elementCount(of shape: [Int], _ name: String) throws -> Int {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw tooLarge(shape, name) }
            count = product
        }
        guard Double(count) * 4 <= Double(ProcessInfo.processInfo.physicalMemory) else { throw tooLarge(shape, name) }
        return count
    }

    /// Throws unless the file can hold `count` elements of the dataset's stored type: they must fit in
    /// the file (1,032 times the file when the dataset is compressed: deflate's largest ratio).
    private func checkStorage(of dataset: hid_t, count: Int, shape: [Int], _ name: String) throws {
        let type = try check(H5Dget_type(dataset), "get the type of dataset", name)
        defer { H5Tclose(type) }
        let properties = try check(H5Dget_create_plist(dataset), "get the creation properties of dataset", name)
        defer { H5Pclose(properties) }
        var fileSize: hsize_t = 0
        _ = try check(H5Fget_filesize(try openID(), &fileSize), "get the size of", path)
        let needed = Double(count) * Double(H5Tget_size(type))
        guard needed <= Double(fileSize) * (H5Pget_nfilters(properties) > 0 ? 1032 : 1) else {
            throw HDF5Error.failed(file: path, object: name, operation: "read dataset", reason: "its \(count) elements of "
                + "\(H5Tget_size(type)) bytes (shape \(shape)) do not fit in the \(fileSize)-byte file")
        }
    }

    private func tooLarge(_ shape: [Int], _ name: String) -> HDF5Error {
        .unsupportedType(file: path, object: name, expected: "a tensor that fits in memory (\(ProcessInfo.processInfo.physicalMemory / 1_000_000_000) GB)",
                         found: "shape \(shape)")
    }

    private func readElements<Element: BinaryFloatingPoint>(
        _ dataset: hid_t, _ name: String, memoryType: hid_t, count: Int
    ) throws -> [Element] {
        var elements = [Element](repeating: 0, count: count)
        guard count > 0 else { return elements }
        try elements.withUnsafeMutableBytes { bytes in
            _ = try check(
                H5Dread(dataset, memoryType, graft_h5s_all(), graft_h5s_all(), graft_h5p_default(), bytes.baseAddress),
                "read dataset", name)
        }
        return elements
    }

    private func shape(ofDataset dataset: hid_t, _ name: String) throws -> [Int] {
        let space = try check(H5Dget_space(dataset), "get the shape of dataset", name)
        defer { H5Sclose(space) }
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR:
            return []
        case H5S_SIMPLE:
            let rank = try check(H5Sget_simple_extent_ndims(space), "get the rank of dataset", name)
            var dimensions = [hsize_t](repeating: 0, count: Int(rank))
            try check(H5Sget_simple_extent_dims(space, &dimensions, nil), "get the shape of dataset", name)
            return dimensions.map { Int($0) }
        default:
            throw HDF5Error.unsupportedType(
                file: path, object: name, expected: "a scalar or an array", found: "empty (null dataspace)")
        }
    }

    private func dataType(ofDataset dataset: hid_t, _ name: String) throws -> HDF5DataType {
        let type = try check(H5Dget_type(dataset), "get the type of dataset", name)
        defer { H5Tclose(type) }
        return HDF5DataType(hdf5: type)
    }

    /// A new IEEE half type in the byte order of the 32-bit float type `base`; close with H5Tclose.
    private func float16Type(base: hid_t, _ name: String) throws -> hid_t {
        try check(graft_h5t_create_float16(base), "create a float16 type for", name)
    }

    /// A new variable-length string type; close with H5Tclose.
    private func variableStringType(cset: H5T_cset_t, _ what: String) throws -> hid_t {
        let type = try check(H5Tcopy(graft_h5t_c_s1()), "create string type for", what)
        guard H5Tset_size(type, graft_h5t_variable()) >= 0, H5Tset_cset(type, cset) >= 0 else {
            let error = HDF5Error.failed(file: path, object: what, operation: "create string type for", reason: hdf5Message())
            H5Tclose(type)
            throw error
        }
        return type
    }

    private func stringAttribute(_ name: String, at object: String) throws -> String {
        let file = try openID()
        try requireObject(object, in: file)
        let what = "\(object)@\(name)"
        guard H5Aexists_by_name(file, object, name, graft_h5p_default()) > 0 else {
            throw HDF5Error.attributeNotFound(file: path, object: object, attribute: name)
        }
        let attribute = try check(
            H5Aopen_by_name(file, object, name, graft_h5p_default(), graft_h5p_default()), "open attribute", what)
        defer { H5Aclose(attribute) }
        let type = try check(H5Aget_type(attribute), "get the type of attribute", what)
        defer { H5Tclose(type) }
        let space = try check(H5Aget_space(attribute), "get the shape of attribute", what)
        defer { H5Sclose(space) }
        let count = H5Sget_simple_extent_npoints(space)
        guard H5Tget_class(type) == H5T_STRING, count == 1 else {
            let found = HDF5DataType(hdf5: type).description + (count == 1 ? "" : " (\(count) elements)")
            throw HDF5Error.unsupportedType(file: path, object: what, expected: "a single string", found: found)
        }
        if try check(H5Tis_variable_str(type), "get the type of attribute", what) > 0 {
            let memoryType = try variableStringType(cset: H5Tget_cset(type), what)
            defer { H5Tclose(memoryType) }
            var characters: UnsafeMutablePointer<CChar>?
            try check(H5Aread(attribute, memoryType, &characters), "read attribute", what)
            defer { H5free_memory(characters) }
            return characters.map { String(cString: $0) } ?? ""
        }
        var bytes = [UInt8](repeating: 0, count: H5Tget_size(type))
        try check(H5Aread(attribute, type, &bytes), "read attribute", what)
        let text = bytes.prefix { $0 != 0 }
        let padding: UInt8 = H5Tget_strpad(type) == H5T_STR_SPACEPAD ? 0x20 : 0
        return String(decoding: text.reversed().drop { $0 == padding }.reversed(), as: UTF8.self)
    }

    private func allDatasetNames() throws -> [String] {
        let file = try openID()
        return try collectNames("list datasets in", "/") { graft_h5_visit_datasets(file, $0, $1) }
    }

    private func allAttributeNames(at object: String) throws -> [String] {
        let file = try openID()
        try requireObject(object, in: file)
        let handle = try check(H5Oopen(file, object, graft_h5p_default()), "open", object)
        defer { H5Oclose(handle) }
        return try collectNames("list attributes of", object) { graft_h5_visit_attributes(handle, $0, $1) }
    }

    /// Runs a shim walker, collecting the names it reports; sorted.
    private func collectNames(
        _ operation: String, _ object: String, walk: (graft_h5_name_callback, UnsafeMutableRawPointer) -> Int32
    ) throws -> [String] {
        var names: [String] = []
        let status = withUnsafeMutablePointer(to: &names) { list in
            walk({ name, context in
                guard let name, let context else { return }
                context.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
            }, list)
        }
        try check(status, operation, object)
        return names.sorted()
    }
}
