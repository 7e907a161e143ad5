import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `adapt serve` as a real process on a free port: it answers what `adapt predict`
/// prints and, on SIGTERM, finishes the request in flight before exiting.
@Suite struct ServeCommands {
    struct Classified: Decodable { let results: [PredictCommands.SequenceLine] }

    /// Reads the server's standard error until it names its port.
    func listeningPort(_ pipe: Pipe) throws -> Int {
        var seen = ""
        let marker = "listening on 127.0.0.1:"
        while true {
            let data = pipe.fileHandleForReading.availableData
            guard !data.isEmpty else { throw CocoaError(.fileReadUnknown, userInfo: ["log": seen]) }
            seen += String(decoding: data, as: UTF8.self)
            if let range = seen.range(of: marker), let line = seen[range.upperBound...].split(separator: "\n").first,
               seen[range.upperBound...].contains("\n"), let port = Int(line) {
                return port
            }
        }
    }

    func request(_ method: String, port: Int, _ path: String, body: String? = nil) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body.map { Data($0.utf8) }
        // Tests run in parallel: on 2 cores another suite's subprocesses can hold the CPU for a while.
        request.timeoutInterval = 180
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    @Test func servesWhatPredictPrintsAndFinishesTheRequestInFlightOnSIGTERM() async throws {
        let w = try Workspace()
        defer { w.remove() }
        let task = w.directory + "/task.h5"
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "lora", "--steps", "6",
                                  "--batch-size", "8", "--learning-rate", "0.01", "--output", task])
        try #require(train.status == 0, "\(train.error)")
        let texts = ["water mawu a", "ndi wind a", "mawu"]
        let predicted = try runAdapt(["predict", "--backbone", w.backbone, "--adapter", task],
                                     input: Data(texts.joined(separator: "\n").utf8))
        let expected = try predicted.output.split(separator: "\n").map {
            try JSONDecoder().decode(PredictCommands.SequenceLine.self, from: Data($0.utf8))
        }

        let process = Process()
        process.executableURL = adaptExecutable
        // The request waits 10 s for others to join its batch: SIGTERM arrives while it waits, even when
        // other suites hold both cores and each poll below takes a while.
        process.arguments = ["serve", "--backbone", w.backbone, "--adapter", "task=\(task)", "--port", "0", "--batch-wait-ms", "10000"]
        let log = Pipe()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let port = try listeningPort(log)
        // The server logs every request: unread, its log would fill the pipe and stop it.
        _ = readInBackground(log.fileHandleForReading)

        let body = #"{"adapter": "task", "texts": ["water mawu a", "ndi wind a", "mawu"]}"#
        let inFlight = Task { try await request("POST", port: port, "/v1/classify", body: body) }
        var polls = 0
        while try await !String(decoding: request("GET", port: port, "/metrics").body, as: UTF8.self).contains("graft_serve_queue_depth 1") {
            polls += 1
            try #require(polls < 500, "the request never reached the queue")
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGTERM)
        let (status, data) = try await inFlight.value
        #expect(status == 200)
        let results = try JSONDecoder().decode(Classified.self, from: data).results
        try #require(results.count == expected.count)
        for (served, printed) in zip(results, expected) {
            #expect(served.label == printed.label)
            for (label, probability) in printed.probabilities {
                #expect(abs(try #require(served.probabilities[label]) - probability) <= 1e-5)
            }
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func anAdapterWithoutANameIsRefused() throws {
        let result = try runAdapt(["serve", "--backbone", "b.h5", "--adapter", "task.h5"])
        #expect(result.status != 0)
        #expect(result.error.contains("--adapter takes NAME=PATH, got task.h5"))
    }
}
