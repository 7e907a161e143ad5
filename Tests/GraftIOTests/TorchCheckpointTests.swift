import Foundation
import GraftFiles
import GraftIO
import GraftTensor
import Testing

/// `pytorch_model.bin` read by a restricted interpreter (`make_torch_fixtures.py`).
@Suite struct TorchCheckpoints {
    func fixture(_ name: String) -> String {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    /// The same model saved by torch.save and as safetensors imports to the same backbone, bit for bit.
    @Test func aTorchSavedModelImportsAsItsSafetensorsTwin() throws {
        let fromTorch = try Backbone.importModel(from: fixture("torch_bert"))
        let fromSafetensors = try Backbone.importModel(from: fixture("torch_bert_safetensors"))
        #expect(fromTorch.checksum == fromSafetensors.checksum)
        #expect(fromTorch.source?.hasSuffix("(bert, pytorch_model.bin)") == true, "\(String(describing: fromTorch.source))")
        let file = try TorchCheckpointFile(contentsOf: fixture("torch_bert/pytorch_model.bin"))
        #expect(file.tensorNames.contains("embeddings.word_embeddings.weight"))
        #expect(try file.tensor(named: "embeddings.word_embeddings.weight").shape == [30, 16])
    }

    /// A pickle that asks for anything beyond a state dict of tensors (here `os.system`) is refused,
    /// naming it, and nothing runs.
    @Test func aPickleThatWouldRunCodeIsRefused() throws {
        let error = try #require(throws: FileContentError.self) { try TorchCheckpointFile(contentsOf: fixture("torch_malicious.bin")) }
        #expect(error.description.contains("refers to posix.system") || error.description.contains("refers to os.system"), "\(error)")
        #expect(error.description.contains("never runs pickled code"))
    }

    /// Bytes that are not a zip archive, or a truncated one, are errors, not crashes.
    @Test func brokenArchivesAreErrors() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("torch_bert/pytorch_model.bin")))
        for (name, bytes) in [("garbage", Data("not a zip".utf8)), ("truncated", data.prefix(data.count / 2)), ("tail", data.suffix(100))] {
            let path = NSTemporaryDirectory() + "graft-torch-\(name)-\(UUID().uuidString).bin"
            try bytes.write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(throws: FileContentError.self, "\(name)") { try TorchCheckpointFile(contentsOf: path) }
        }
    }
}
