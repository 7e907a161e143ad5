import Foundation
import Testing

/// `adapt continual --tasks`: a stream from the user's own labelled files, with results as JSON.
@Suite struct ContinualCommands {
    /// Writes one labelled JSONL file per task: `labels` with a few train and test texts each.
    func taskFile(_ w: Workspace, _ name: String, labels: [String], splits: [String] = ["train", "test"]) throws -> String {
        let words = ["mawu", "a", "ndi", "water", "wind"]
        var lines: [String] = []
        for (l, label) in labels.enumerated() {
            for split in splits {
                for i in 0..<6 {
                    let text = (0..<3).map { words[(l * 2 + i + $0) % words.count] }.joined(separator: " ")
                    lines.append(#"{"text": "\#(text)", "label": "\#(label)", "split": "\#(split)"}"#)
                }
            }
        }
        let path = "\(w.directory)/\(name).jsonl"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Report: Decodable {
        struct Run: Decodable {
            let name: String; let description: String; let matrix: [[Double?]]; let average_accuracy: Double; let forgetting: Double
            let backward_transfer: Double; let memory_examples: Int; let memory_bytes: Int
        }
        let stream: String; let classes: [String]; let tasks: [String]; let runs: [Run]
    }

    @Test func aStreamOfTheUsersFilesIsLearnedAndReportedAsJSON() throws {
        let w = try Workspace()
        defer { w.remove() }
        let first = try taskFile(w, "first", labels: ["wet", "dry"]), second = try taskFile(w, "second", labels: ["hot", "cold"])
        let json = w.directory + "/results.json", plot = w.directory + "/curves.svg"
        let result = try runAdapt(["continual", "--tasks", "\(first),\(second)", "--backbone", w.backbone, "--method", "linear",
                                   "--strategy", "naive,replay", "--memory", "4", "--epochs", "2", "--json", json, "--plot", plot])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("tasks: 4 classes in 2 tasks; 24 training and 24 test examples"), "\(result.output)")
        let report = try JSONDecoder().decode(Report.self, from: try Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.stream == "tasks" && report.classes == ["dry", "wet", "cold", "hot"] && report.tasks == ["dry, wet", "cold, hot"])
        #expect(report.runs.map(\.name) == ["linear", "linear + replay (memory 4)"])
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.components(separatedBy: "<polyline").count == 3 && svg.contains(">linear + replay</text>"))
        for run in report.runs {
            #expect(run.matrix.count == 2 && run.matrix[0][1] == nil && run.matrix[1].allSatisfy { $0 != nil })
            let last = run.matrix[1].compactMap { $0 }
            #expect(abs(run.average_accuracy - last.reduce(0, +) / 2) < 1e-9)
            #expect(abs(run.forgetting - (run.matrix[0][0]! - run.matrix[1][0]!)) < 1e-9 && abs(run.backward_transfer + run.forgetting) < 1e-9)
        }
        // 4 examples of 16 features in float32 plus a label each.
        #expect(report.runs[1].memory_examples == 4 && report.runs[1].memory_bytes == 4 * (16 * 4 + 8))
    }

    @Test func filesWithTheSameClassesAreADomainIncrementalStream() throws {
        let w = try Workspace()
        defer { w.remove() }
        let first = try taskFile(w, "first", labels: ["wet", "dry"]), second = try taskFile(w, "second", labels: ["dry", "wet"])
        let json = w.directory + "/results.json"
        let result = try runAdapt(["continual", "--tasks", "\(first),\(second)", "--backbone", w.backbone, "--method", "linear",
                                   "--epochs", "2", "--json", json])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("tasks: 2 classes in 2 tasks; 24 training and 24 test examples"), "\(result.output)")
        let report = try JSONDecoder().decode(Report.self, from: try Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.classes == ["dry", "wet"] && report.tasks == ["first.jsonl", "second.jsonl"])
        // the first domain is scored after each task, the second once learned
        #expect(report.runs[0].matrix.count == 2 && report.runs[0].matrix[0][1] == nil && report.runs[0].matrix[1].allSatisfy { $0 != nil })
    }

    /// An adapter over the backbone under two strategies, and an adapter per task with its router,
    /// on the files' texts (token ids, not embeddings).
    @Test func adaptersOverTheBackboneLearnTheStreamsTexts() throws {
        let w = try Workspace()
        defer { w.remove() }
        let first = try taskFile(w, "first", labels: ["wet", "dry"]), second = try taskFile(w, "second", labels: ["hot", "cold"])
        let json = w.directory + "/results.json"
        let result = try runAdapt(["continual", "--tasks", "\(first),\(second)", "--backbone", w.backbone, "--method", "adapter,adapter-per-task",
                                   "--strategy", "naive,replay", "--memory", "4", "--epochs", "2", "--json", json])
        #expect(result.status == 0, "\(result.error)")
        let report = try JSONDecoder().decode(Report.self, from: try Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.runs.map(\.name) == ["adapter", "adapter + replay (memory 4)", "adapter-per-task"])
        #expect(report.runs[0].description.hasPrefix("seq_bn adapter and head over tiny-xlmr (frozen), naive"), "\(report.runs[0].description)")
        #expect(report.runs[2].description.contains("of test examples routed to their task"), "\(report.runs[2].description)")
        #expect(report.runs.allSatisfy { $0.matrix.count == 2 && $0.matrix[1].allSatisfy { $0 != nil } })
        let images = try runAdapt(["continual", "--stream", "fashion-mnist", "--method", "adapter"])
        #expect(images.status != 0 && images.error.contains("--method adapter trains over the backbone on texts; fashion-mnist has images"),
                "\(images.error)")
    }

    @Test func aStreamThatCannotBeClassIncrementalIsRefused() throws {
        let w = try Workspace()
        defer { w.remove() }
        let first = try taskFile(w, "first", labels: ["wet", "dry"]), again = try taskFile(w, "again", labels: ["dry", "hot"])
        let overlap = try runAdapt(["continual", "--tasks", "\(first),\(again)", "--backbone", w.backbone, "--method", "linear"])
        #expect(overlap.status != 0 && overlap.error.contains("again.jsonl has label \"dry\", which \(first) already has: in a class-incremental stream"), "\(overlap.error)")
        let untested = try taskFile(w, "untested", labels: ["hot"], splits: ["train"])
        let empty = try runAdapt(["continual", "--tasks", "\(first),\(untested)", "--backbone", w.backbone, "--method", "linear"])
        #expect(empty.status != 0 && empty.error.contains("task 2 has no test examples"), "\(empty.error)")
        let both = try runAdapt(["continual", "--tasks", first, "--stream", "fashion-mnist"])
        #expect(both.status != 0 && both.error.contains("give either --stream or --tasks"), "\(both.error)")
        let replay = try runAdapt(["continual", "--tasks", first, "--backbone", w.backbone, "--strategy", "replay", "--memory", "0"])
        #expect(replay.status != 0 && replay.error.contains("the memory must hold at least one example"), "\(replay.error)")
        let everything = try runAdapt(["continual", "--tasks", first, "--backbone", w.backbone, "--method", "linear", "--strategy", "gdumb",
                                       "--memory", "100", "--epochs", "1"])
        #expect(everything.status == 0 && everything.error.contains("note: --memory 100 holds all 12 training examples of the stream"),
                "\(everything.error)")
    }
}
