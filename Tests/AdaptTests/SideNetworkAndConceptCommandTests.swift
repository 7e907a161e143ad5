import Foundation
import GraftAdapters
import GraftIO
import GraftTestSupport
import Testing

@Suite struct SideNetworkAndConceptCommands {
    /// `--method unipt` is trained, saved and evaluated by the same commands as every adapter method.
    @Test func trainWithUniPTWritesAnAdapterCheckpointThatEvalReads() throws {
        let w = try Workspace()
        defer { w.remove() }
        let output = w.directory + "/side.h5"
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "unipt", "--steps", "10",
                                  "--batch-size", "8", "--learning-rate", "0.01", "--reduction-factor", "4", "--output", output])
        #expect(train.status == 0, "\(train.error)")
        let checkpoint = try AdapterCheckpoint.load(from: output, backbone: try Backbone.load(from: w.backbone))
        #expect(checkpoint.configuration == AdapterConfiguration(UniPTConfiguration(reductionFactor: 4)))
        #expect(checkpoint.headConfiguration?.labels == ["wet", "dry"])
        let eval = try runAdapt(["eval", "--backbone", w.backbone, "--adapter", output, "--data", w.labelled])
        #expect(eval.status == 0, "\(eval.error)")
        let report = { (text: String) in text.components(separatedBy: "test split:\n").last! }
        #expect(eval.output.hasSuffix(report(train.output)), "\(eval.output)\n---\n\(train.output)")
        let fractional = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "unipt",
                                       "--reduction-factor", "1.5", "--output", w.directory + "/other.h5"])
        #expect(fractional.status != 0 && fractional.error.contains("whole number"), "\(fractional.error)")
        let stacked = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "unipt",
                                    "--stack-on", output, "--output", w.directory + "/other.h5"])
        #expect(stacked.status != 0 && stacked.error.contains("composes with no other adapter"), "\(stacked.error)")
    }

    /// A prepared `zoo` set of two animals per class in a scratch cache.
    func zooCache(in directory: String) throws -> String {
        let cache = directory + "/cache"
        try FileManager.default.createDirectory(atPath: cache + "/data", withIntermediateDirectories: true)
        let animals = ZooAnimalsFixture.lines.joined(separator: "\n") + "\n"
        let path = cache + "/data/zoo.jsonl"
        try animals.write(toFile: path, atomically: true, encoding: .utf8)
        try recordChecksum(of: path)
        return cache
    }

    @Test(arguments: ["cbm", "labo", "ecbm"])
    func conceptsReportsAccuraciesTheCurveAndAPlot(method: String) throws {
        let w = try Workspace()
        defer { w.remove() }
        let cache = try zooCache(in: w.directory)
        let svg = w.directory + "/curve.svg"
        let run = try runAdapt(["concepts", "--backbone", w.backbone, "--cache", cache, "--method", method, "--folds", "2",
                                "--repeats", "1", "--steps", "5", "--orders", "1", "--svg", svg, "--ecbm-global-weight", "3"])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("| linear probe | - |") && run.output.contains("| 16 |") && run.output.contains("ECBM lambda_g 3.0;"))
        #expect(run.output.contains(["cbm": "| CBM joint |", "labo": "| LaBo |", "ecbm": "| ECBM |"][method]!))
        let plot = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(plot.hasPrefix("<svg") && plot.contains("<polyline") && plot.hasSuffix("</svg>\n"))
        let unprepared = try runAdapt(["concepts", "--backbone", w.backbone, "--cache", w.directory + "/empty"])
        #expect(unprepared.status != 0 && unprepared.error.contains("adapt data prepare zoo"))
    }
}

/// Two animals of each Zoo class with made-up attributes.
enum ZooAnimalsFixture {
    static let lines: [String] = ["mammal", "bird", "reptile", "fish", "amphibian", "insect", "mollusc.et.al"].enumerated().flatMap { index, label in
        (0..<2).map { copy in
            let values = ["hair", "feathers", "eggs", "milk", "airborne", "aquatic", "predator", "toothed", "backbone", "breathes",
                          "venomous", "fins", "legs", "tail", "domestic", "catsize"].enumerated().map { position, name in
                "\"\(name)\":\(name == "legs" ? [0, 2, 4, 5, 6, 8][(index + copy) % 6] : (position + index + copy) % 3 == 0 ? 1 : 0)"
            }
            return #"{"animal":"animal\#(index).\#(copy + 1)","concepts":{\#(values.joined(separator: ","))},"label":"\#(label)"}"#
        }
    }
}
