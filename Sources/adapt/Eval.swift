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

    @OptionGroup var model: ModelOptions
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
        let loaded = try model.load()
        let tokenizer = loaded.backbone.tokenizer
        print("\(loaded.description) on \(data) (\(split.rawValue))")
        if let head = loaded.head?.module as? MaskedLMHead {
            let texts = try TextCorpus.load(data).heldOut.sample(examples ?? 64, seed: 1).map { tokenizer.encode($0, maxLength: maxLength) }
            let task = MaskedLanguageModel(backbone: loaded.backbone, model: loaded.model, head: head)
            print(String(format: "pseudo-perplexity %.2f (%d held-out texts)", task.pseudoPerplexity(texts), texts.count))
        } else if let classifier = loaded.classifier, classifier.kind == .sequence {
            let sets = try LabelledData<SequenceExample>.load(data, tokenizer: tokenizer, maxLength: maxLength, limits: limits(split))
            try checkLabels(sets.labels, trained: classifier.labels)
            print(classifier.evaluate(sets.split(split)))
        } else if let classifier = loaded.classifier {
            let sets = try LabelledData<TokenExample>.load(data, tokenizer: tokenizer, maxLength: maxLength, limits: limits(split))
            try checkLabels(sets.labels, trained: classifier.labels)
            print(classifier.evaluate(sets.split(split)))
        } else {
            throw CommandError(model.adapter.map { "\($0) has no head to evaluate with" }
                               ?? "\(model.backbone) is a backbone without a task head: give --adapter, or a fully fine-tuned model (made by `adapt train --method full`)")
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
