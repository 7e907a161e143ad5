import Foundation
import GraftAdapters
import GraftIO
import Testing

/// Runs the built `adapt` under `mpirun` (Open MPI, Debian's openmpi-bin) with `ranks` processes;
/// `perRank`, if given, gives each rank its own extra arguments (MPMD).
func runMPI(ranks: Int, _ arguments: [String], perRank: [[String]]? = nil) throws -> (status: Int32, output: String, error: String) {
    let adapt = adaptExecutable.path
    let mpirun = "/usr/bin/mpirun"
    guard FileManager.default.isExecutableFile(atPath: mpirun) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(mpirun): install openmpi-bin (Scripts/install-dependencies.sh does)"])
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: mpirun)
    // Shared memory without cross-process reads (CMA), which containers often forbid.
    let launch = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
                  "-x", "OPENBLAS_NUM_THREADS=1"]
    process.arguments = launch + (perRank.map { ranks in
        ranks.enumerated().flatMap { index, extra in (index == 0 ? [] : [":"]) + ["-np", "1", adapt] + arguments + extra }
    } ?? (["-np", "\(ranks)", adapt] + arguments))
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let err = readInBackground(error.fileHandleForReading)
    let out = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err(), as: UTF8.self))
}

/// `mpirun -np N adapt mlm|train`: each update's micro-batches shared by the ranks, the same result as one process.
@Suite(.serialized) struct DataParallelCommands {
    /// The adapter's weights and the logged losses of a run.
    func result(_ w: Workspace, _ name: String) throws -> (weights: [String: [Float]], losses: [Double]) {
        let checkpoint = try AdapterCheckpoint.load(from: "\(w.directory)/\(name).h5", backbone: try Backbone.load(from: w.backbone))
        let weights = Dictionary(uniqueKeysWithValues: checkpoint.adapter.namedParameters().map { ($0.name, $0.parameter.value.scalars) })
        struct Line: Decodable { let loss: Double }
        let log = try String(contentsOfFile: "\(w.directory)/\(name).jsonl", encoding: .utf8)
        return (weights, try log.split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)).loss })
    }

    @Test(arguments: [2, 3])
    func ranksTrainTheSameAdapterAsOneProcess(ranks: Int) throws {
        let w = try Workspace()
        defer { w.remove() }
        for (command, data) in [("mlm", w.corpus), ("train", w.labelled)] {
            func arguments(_ name: String) -> [String] {
                [command, "--backbone", w.backbone, "--data", data, "--method", "seq_bn", "--steps", "3", "--batch-size", "4",
                 "--gradient-accumulation", "\(ranks * 2)", "--learning-rate", "0.01", "--threads", "1",
                 "--output", "\(w.directory)/\(name).h5", "--log", "\(w.directory)/\(name).jsonl"]
            }
            let single = try runAdapt(arguments("\(command)-single"))
            #expect(single.status == 0, "\(single.error)")
            let shared = try runMPI(ranks: ranks, arguments("\(command)-shared"))
            #expect(shared.status == 0, "\(shared.error)")
            // Rank 0 alone speaks: the job prints what one process prints, once.
            #expect(shared.output.components(separatedBy: "wrote \(w.directory)/\(command)-shared.h5").count == 2, "\(shared.output)")
            let (a, b) = (try result(w, "\(command)-single"), try result(w, "\(command)-shared"))
            #expect(a.losses.count == 3 && a.losses == b.losses, "\(command): losses \(a.losses) against \(b.losses)")
            #expect(!a.weights.isEmpty && a.weights == b.weights, "\(command): the adapters differ")
        }
    }

    @Test func ranksThatCannotShareARunAreStopped() throws {
        let w = try Workspace()
        defer { w.remove() }
        let base = ["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "seq_bn", "--steps", "2", "--batch-size", "4",
                    "--threads", "1", "--output", "\(w.directory)/lang.h5"]
        let indivisible = try runMPI(ranks: 2, base + ["--gradient-accumulation", "3"])
        #expect(indivisible.status != 0 && indivisible.error.contains("--gradient-accumulation 3 cannot be shared by 2 ranks"), "\(indivisible.error)")
        let different = try runMPI(ranks: 2, base + ["--gradient-accumulation", "2"], perRank: [["--learning-rate", "0.01"], ["--learning-rate", "0.02"]])
        #expect(different.status != 0 && different.error.contains("were started with other settings or another backbone"), "\(different.error)")
        #expect(!FileManager.default.fileExists(atPath: "\(w.directory)/lang.h5"))
    }

    /// Started as a rank of a job (Open MPI's environment) without a loadable Open MPI: a message naming the
    /// package; without that environment, training never touches MPI.
    @Test func aMissingOpenMPIIsNamed() throws {
        let w = try Workspace()
        defer { w.remove() }
        let arguments = ["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "seq_bn", "--steps", "2", "--batch-size", "4",
                         "--threads", "1", "--output", "\(w.directory)/lang.h5"]
        let missing = try runAdapt(arguments, environment: ["OMPI_COMM_WORLD_SIZE": "2", "GRAFT_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])
        #expect(missing.status != 0 && missing.error.contains("started by mpirun, but Open MPI cannot be used: /nonexistent/libmpi.so.40 cannot be loaded")
                && missing.error.contains("install Debian's openmpi-bin"), "\(missing.error)")
        let alone = try runAdapt(arguments, environment: ["GRAFT_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])
        #expect(alone.status == 0, "\(alone.error)")
    }
}
