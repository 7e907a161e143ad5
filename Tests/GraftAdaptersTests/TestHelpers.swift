import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftAdapters

/// A padded batch of two sequences for `TinyBackbone` (pad id 1).
let tinyInput = EncoderInput(padding: [[0, 5, 6, 7, 9, 2], [0, 8, 11, 2]], padID: 1)

/// A tiny backbone's encoder with `adapters` added under their names.
func graft(_ backbone: Backbone, _ adapters: [(String, any Adapter)]) throws -> GraftedModel {
    let model = GraftedModel(encoder: backbone.encoder)
    for (name, adapter) in adapters { try model.add(name, adapter) }
    return model
}

/// The final hidden states of `model` on `tinyInput` (inference).
func output(_ model: GraftedModel) -> Tensor { model(tinyInput, context: model.context()).value }

/// A path in the test bundle's `Fixtures` folder.
func fixture(_ name: String) -> String {
    Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name).path
}
