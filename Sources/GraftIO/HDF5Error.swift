/// An error from reading or writing an HDF5 file. Every case names the file,
/// and where relevant the dataset or object, what was expected and what was found.
public enum HDF5Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file exists at `file`.
    case fileNotFound(file: String)
    /// `file` exists but does not start with an HDF5 signature.
    case notHDF5(file: String)
    /// HDF5 could not open or create `file` (truncated or corrupt, unwritable, ...); `reason` is HDF5's message.
    case cannotOpen(file: String, reason: String)
    /// `file` has no dataset at path `dataset`.
    case datasetNotFound(file: String, dataset: String)
    /// `file` has no group or dataset at path `object` to hold attributes.
    case objectNotFound(file: String, object: String)
    /// The dataset or attribute `object` stores `found` data where `expected` was needed.
    case unsupportedType(file: String, object: String, expected: String, found: String)
    /// The dataset has shape `found` where the caller expected `expected`.
    case shapeMismatch(file: String, dataset: String, expected: [Int], found: [Int])
    /// The object `object` has no attribute named `attribute`.
    case attributeNotFound(file: String, object: String, attribute: String)
    /// An HDF5 call failed while trying to `operation` on `object`; `reason` is HDF5's message.
    case failed(file: String, object: String, operation: String, reason: String)
    /// The file was used after `close()`.
    case closed(file: String)

    /// A sentence naming the file, the dataset or object, and what went wrong.
    public var description: String {
        switch self {
        case .fileNotFound(let file):
            "HDF5 file not found: \(file)"
        case .notHDF5(let file):
            "\(file) is not an HDF5 file"
        case .cannotOpen(let file, let reason):
            "cannot open HDF5 file \(file): \(reason)"
        case .datasetNotFound(let file, let dataset):
            "no dataset '\(dataset)' in \(file)"
        case .objectNotFound(let file, let object):
            "no group or dataset '\(object)' in \(file)"
        case .unsupportedType(let file, let object, let expected, let found):
            "'\(object)' in \(file) holds \(found) data; expected \(expected)"
        case .shapeMismatch(let file, let dataset, let expected, let found):
            "dataset '\(dataset)' in \(file) has shape \(found); expected \(expected)"
        case .attributeNotFound(let file, let object, let attribute):
            "no attribute '\(attribute)' on '\(object)' in \(file)"
        case .failed(let file, let object, let operation, let reason):
            "cannot \(operation) '\(object)' in \(file): \(reason)"
        case .closed(let file):
            "HDF5 file \(file) was used after close()"
        }
    }
}
