import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN

/// A frozen backbone with trained adapters and the head of the top one, loaded
/// from files: what `adapt eval`, `adapt predict` and `adapt embed` run.
public struct AdaptedModel {
    /// The loaded backbone (fine-tuned weights included for a fully fine-tuned model file).
    public let backbone: Backbone
    /// The backbone's encoder with the loaded adapters, `setup` active.
    public let model: GraftedModel
    /// The active setup: `nil` for a plain or fully fine-tuned backbone.
    public let setup: AdapterSetup?
    /// The head of the top adapter (or of a fully fine-tuned backbone); `nil` when there is none.
    public let head: (configuration: HeadConfiguration, module: any Module)?
    /// What was loaded, in words: the setup, or the fine-tuned model and what it started from.
    public let description: String

    /// Loads `backbonePath` and the adapter checkpoints (Graft files or peft
    /// directories) `adapter`, run alone or, with `stackOn`, as Stack(stackOn, adapter):
    /// a language adapter under a task adapter. Without adapters, a fully
    /// fine-tuned model file keeps its head and a plain backbone has none.
    /// - Throws: the reader's errors, `AdapterCheckpointError` for an adapter of
    ///   another backbone, `CompositionError` for two adapters of one name.
    public static func load(backbone backbonePath: String, adapter: String?, stackOn: String? = nil) throws -> AdaptedModel {
        guard let adapter else {
            guard stackOn == nil else {
                throw CompositionError.undefined(setup: "Stack(\(stackOn!), ?)", reason: "a language adapter is stacked under a task adapter; give the task adapter too")
            }
            let (backbone, fineTuned) = try FineTunedModel.loadBackbone(from: backbonePath)
            let description = fineTuned.map { "\(backbone.name) (fine-tuned from \($0.startedFrom.name))" } ?? backbone.name
            return AdaptedModel(backbone: backbone, model: GraftedModel(encoder: backbone.encoder), setup: nil,
                                head: fineTuned.map { ($0.headConfiguration, $0.head) }, description: description)
        }
        let backbone = try Backbone.load(from: backbonePath)
        let model = GraftedModel(encoder: backbone.encoder)
        let task = try AdapterCheckpoint.load(from: adapter, backbone: backbone)
        try model.add(task.name, task.adapter)
        var setup = AdapterSetup.single(task.name)
        if let stackOn {
            let language = try AdapterCheckpoint.load(from: stackOn, backbone: backbone)
            try model.add(language.name, language.adapter)
            setup = .stack([.single(language.name), setup])
        }
        try model.activate(setup)
        return AdaptedModel(backbone: backbone, model: model, setup: setup,
                            head: task.headConfiguration.flatMap { configuration in task.head.map { (configuration, $0) } },
                            description: "\(setup)")
    }

    /// A classifier around the head, if it is a sequence or token classification head.
    public var classifier: Classifier? {
        switch head?.configuration {
        case .sequenceClassification(let labels, _, _)?: Classifier(backbone: backbone, model: model, head: head!.module, kind: .sequence, labels: labels)
        case .tokenClassification(let labels, _)?: Classifier(backbone: backbone, model: model, head: head!.module, kind: .token, labels: labels)
        default: nil
        }
    }

    /// Mean-pooled, L2-normalised sentence embeddings through the active setup
    /// (see `Backbone.embed`).
    public func embed(_ texts: [String], maxLength: Int? = nil, batchSize: Int = 32) -> (ids: [[Int]], embeddings: [[Float]]) {
        backbone.embed(texts, maxLength: maxLength, batchSize: batchSize) { model($0, context: model.context()) }
    }
}
