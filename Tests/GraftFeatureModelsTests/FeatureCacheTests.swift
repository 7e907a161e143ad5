import Foundation
import GraftFiles
import GraftIO
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftFeatureModels

@Suite struct FeatureCaches {
    @Test func aCacheReadsBackOnlyForItsBackbone() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var generator = SeededGenerator(seed: 1)
        let train = try LabelledFeatures(features: .normal(shape: [4, 3], generator: &generator), labels: [0, 1, 2, 1])
        let test = try LabelledFeatures(features: .normal(shape: [2, 3], generator: &generator), labels: [2, 0])
        let cache = FeatureCache(train: train, test: test, unlabelled: .normal(shape: [5, 3], generator: &generator), backboneChecksum: "abc")
        try cache.save(to: path)
        let loaded = try FeatureCache.load(from: path, backboneChecksum: "abc")
        #expect(loaded.train.features == train.features && loaded.train.labels == train.labels)
        #expect(loaded.test.features == test.features && loaded.test.labels == test.labels && loaded.unlabelled == cache.unlabelled)
        #expect(throws: FileContentError.self) { try FeatureCache.load(from: path, backboneChecksum: "other") }
        try HDF5File(path: path, mode: .update).write(Tensor(shape: [4], scalars: [0, 1, 2.5, 1]), at: "train/labels")
        #expect(throws: FileContentError.self) { try FeatureCache.load(from: path, backboneChecksum: "abc") }
        try HDF5File(path: path, mode: .update).setAttribute("graft-cbm/1", named: "format")
        #expect(throws: FileContentError.self) { try FeatureCache.load(from: path, backboneChecksum: "abc") }
    }
}
