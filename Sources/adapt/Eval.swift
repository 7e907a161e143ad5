import ArgumentParser
import Foundation
import Graft

/// `adapt eval`: scores a trained adapter (with its head) on a data set.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a trained adapter with its head: classification report or pseudo-perplexity.",
        discussion: """
            A task adapter (sequence or token classification head) is scored on a split of a labelled set \
            (accuracy, macro-F1, per-class report); with --stack-on it runs as Stack(language, task), so a \
            language adapter can be swapped in under a task adapter trained with another one (cross-lingual \
            transfer). A language adapter (masked-LM head) is scored on held-out texts of a corpus: masked-LM \
            loss and pseudo-perplexity. ADAPTER may be a Graft checkpoint or a peft directory. Without \
            --adapter, the backbone file must be a fully fine-tuned model (`adapt train --method full`), \
            scored with the head it holds.
            """)

    @Option(help: "The backbone file.") var backbone: String
    @Option(help: "The adapter checkpoint (with its head); omit it for a fully fine-tuned backbone, which holds its head.")
    var adapter: String?
    @Option(help: "A language adapter to run under the task adapter.") var stackOn: String?
    @Option(help: "The data: a prepared set name or a file.") var data: String
    @Option(help: "The split to score (train, dev, test).") var split: DataSplit = .test
    @Option(help: "Score at most this many examples or texts (default: all; texts: 64).") var examples: Int?
    @Option(help: "Tokens per text (default 128).") var maxLength = 128
    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        try checkPositive(["--examples": examples])
        guard maxLength >= 4 else { throw ValidationError("--max-length must be at least 4, got \(maxLength)") }
    }

    func run() throws {
        try threads.apply()
        let model: Backbone, grafted: GraftedModel, headConfiguration: HeadConfiguration?, head: (any Module)?
        if let adapter {
            model = try Backbone.load(from: backbone)
            let checkpoint = try AdapterCheckpoint.load(from: adapter, backbone: model)
            grafted = GraftedModel(encoder: model.encoder)
            try grafted.add(checkpoint.name, checkpoint.adapter)
            var setup = AdapterSetup.single(checkpoint.name)
            if let stackOn {
                let language = try AdapterCheckpoint.load(from: stackOn, backbone: model)
                guard language.name != checkpoint.name else { throw CommandError("the two adapters are both named \(language.name)") }
                try grafted.add(language.name, language.adapter)
                setup = .stack([.single(language.name), setup])
            }
            try grafted.activate(setup)
            (headConfiguration, head) = (checkpoint.headConfiguration, checkpoint.head)
            print("\(setup) on \(data) (\(split.rawValue))")
        } else {
            guard stackOn == nil else { throw ValidationError("--stack-on needs --adapter: the task adapter to stack on the language adapter") }
            let fineTuned = try FineTunedModel.load(from: backbone)
            (model, headConfiguration, head) = (fineTuned.backbone, fineTuned.headConfiguration, fineTuned.head)
            grafted = GraftedModel(encoder: model.encoder)
            print("\(model.name) (fine-tuned from \(fineTuned.startedFrom.name)) on \(data) (\(split.rawValue))")
        }
        switch (headConfiguration, head) {
        case (.maskedLM?, let head as MaskedLMHead):
            let texts = try TextCorpus.load(data).heldOut.sample(examples ?? 64, seed: 1).map { model.tokenizer.encode($0, maxLength: maxLength) }
            let task = MaskedLanguageModel(backbone: model, model: grafted, head: head)
            print(String(format: "pseudo-perplexity %.2f (%d held-out texts)", task.pseudoPerplexity(texts), texts.count))
        case (.sequenceClassification(let labels, _)?, let head?):
            let sets = try LabelledData<SequenceExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits(split))
            try checkLabels(sets.labels, trained: labels)
            let classifier = Classifier(backbone: model, model: grafted, head: head, kind: .sequence, labels: labels)
            print(classifier.evaluate(sets.split(split)))
        case (.tokenClassification(let labels)?, let head?):
            let sets = try LabelledData<TokenExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits(split))
            try checkLabels(sets.labels, trained: labels)
            let classifier = Classifier(backbone: model, model: grafted, head: head, kind: .token, labels: labels)
            print(classifier.evaluate(sets.split(split)))
        default:
            throw CommandError("\(adapter ?? backbone) has no head to evaluate with")
        }
    }

    /// Loads only the scored split (a sample of `examples`), and one training example.
    func limits(_ split: DataSplit) -> SplitLimits {
        SplitLimits(train: split == .train ? examples : 1, dev: split == .dev ? examples : 0, test: split == .test ? examples : 0)
    }

    /// The data's labels must be the ones the head was trained on, in the same order.
    func checkLabels(_ labels: [String], trained: [String]) throws {
        let unseen = labels.filter { !trained.contains($0) }
        guard unseen.isEmpty else {
            throw CommandError("\(data) has labels the adapter was never trained on: \(unseen.joined(separator: ", "))")
        }
        guard labels == trained else {
            throw CommandError("\(data) orders its labels differently from the adapter's head (\(trained.joined(separator: ", ")))")
        }
    }
}
