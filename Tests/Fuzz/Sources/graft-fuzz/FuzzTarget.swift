import Foundation
import Graft

/// The reader under test, named by `GRAFT_FUZZ_FORMAT` (an `InputFormat`).
private let format: InputFormat = {
    let name = ProcessInfo.processInfo.environment["GRAFT_FUZZ_FORMAT"] ?? ""
    guard let format = InputFormat(rawValue: name) else {
        fatalError("set GRAFT_FUZZ_FORMAT to one of \(InputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return format
}()

/// Graft's readers take paths: each input is written to this file first.
private let path = NSTemporaryDirectory() + "graft-fuzz-\(getpid())"

/// libFuzzer's entry point: reads one input as `format`; an error is a correct answer, a crash is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: bytes, count: count)) else { fatalError("cannot write \(path)") }
    _ = try? format.read(path)
    return 0
}

/// libFuzzer's driver (from `-sanitize=fuzzer`), which parses its flags and runs the inputs.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                             _ target: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// The executable's entry point (SwiftPM links `main` to `MODULE_main`): hands over to libFuzzer.
@_cdecl("graft_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var (count, arguments) = (argc, argv)
    return runFuzzerDriver(&count, &arguments) { bytes, size in fuzz(bytes, size) }
}
