import Foundation
import GraftFiles
import GraftIO
import GraftTensor

/// Embedded examples for a stream, kept on disk so that a backbone embeds them
/// once: one HDF5 file, root attributes `format` (`graft-features/1`) and
/// `backbone_checksum`, datasets `train/features`, `train/labels`,
/// `test/features`, `test/labels` and `unlabelled/features` (labels as floats).
public struct FeatureCache {
    /// The value of the `format` attribute of feature caches.
    public static let format = "graft-features/1"

    /// The embedded training examples and their labels.
    public var train: LabelledFeatures
    /// The embedded test examples and their labels.
    public var test: LabelledFeatures
    /// Features without labels (e.g. for initialising a bottleneck's keys).
    public var unlabelled: Tensor
    /// `Backbone.checksum` of the backbone that embedded them.
    public var backboneChecksum: String

    /// A cache of the given splits, tagged with the checksum of the backbone that embedded them.
    public init(train: LabelledFeatures, test: LabelledFeatures, unlabelled: Tensor, backboneChecksum: String) {
        self.train = train
        self.test = test
        self.unlabelled = unlabelled
        self.backboneChecksum = backboneChecksum
    }

    /// Writes the cache atomically.
    public func save(to path: String) throws {
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute(Self.format, named: "format")
            try file.setAttribute(backboneChecksum, named: "backbone_checksum")
            for (name, split) in [("train", train), ("test", test)] {
                try file.write(split.features, at: "\(name)/features")
                try file.write(Tensor(shape: [split.count], scalars: split.labels.map(Float.init)), at: "\(name)/labels")
            }
            try file.write(unlabelled, at: "unlabelled/features")
        }
    }

    /// The cache at `path`, which must have been embedded by the backbone of checksum `backboneChecksum`.
    /// - Throws: `FileContentError` for another kind of file or another backbone, `ContinualError` for
    ///   labels that do not fit their features, `HDF5Error` for a missing dataset.
    public static func load(from path: String, backboneChecksum: String) throws -> FeatureCache {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let found = (try? file.attribute(named: "format")) ?? "none"
        guard found == format else {
            throw FileContentError(source: path, detail: "expected format attribute \"\(format)\", found \"\(found)\"")
        }
        let checksum = try file.attribute(named: "backbone_checksum")
        guard checksum == backboneChecksum else {
            throw FileContentError(source: path, detail: "embedded by the backbone of checksum \(checksum), not \(backboneChecksum)")
        }
        func split(_ name: String) throws -> LabelledFeatures {
            let labels = try file.read("\(name)/labels").scalars
            guard labels.allSatisfy({ $0 >= 0 && $0 == $0.rounded() }) else {
                throw FileContentError(source: path, detail: "\(name)/labels holds a value that is not a class index")
            }
            return try LabelledFeatures(features: file.read("\(name)/features"), labels: labels.map { Int($0) })
        }
        return FeatureCache(train: try split("train"), test: try split("test"), unlabelled: try file.read("unlabelled/features"),
                            backboneChecksum: checksum)
    }
}
