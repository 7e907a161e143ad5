import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GraftAutodiff
import GraftTensor

/// Data-parallel training over the ranks of an MPI job (`mpirun -np N adapt ...`).
///
/// The micro-batches of each update (`--gradient-accumulation`, a multiple of the
/// rank count) are dealt to the ranks in contiguous runs: rank `r` of `N` computes
/// micro-batches `r A/N ..< (r+1) A/N`. Every rank then gathers every micro-batch's
/// gradients and sums them in micro-batch order, as one process accumulates them, so
/// every rank applies the same update and the run equals the single-process run of the
/// same command bit for bit. Only the trainable parameters' gradients cross the network.
///
/// Open MPI is loaded at run time (`libmpi.so.40`, Debian's `libopenmpi3`, or the file
/// `GRAFT_MPI_LIBRARY` names), so Graft builds and runs without it; a process started
/// by `mpirun` that cannot load it stops with a message.
public final class DataParallel: @unchecked Sendable {
    /// This process's rank in `MPI_COMM_WORLD`, `0..<size`.
    public let rank: Int
    /// The number of ranks in the job (at least 2).
    public let size: Int
    private let mpi: OpenMPI

    /// The job this process was started in: `nil` without `mpirun` (Open MPI's
    /// `OMPI_COMM_WORLD_SIZE` unset) or with a single rank. Initialises MPI once.
    /// - Throws: `DataParallelError.mpiUnavailable` when started by `mpirun` but Open MPI cannot be loaded.
    public static func fromEnvironment() throws -> DataParallel? {
        guard let size = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init), size > 1 else { return nil }
        return try lock.withLock {
            if let shared { return shared }
            let job = try DataParallel(mpi: OpenMPI())
            shared = job
            return job
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var shared: DataParallel?

    private init(mpi: OpenMPI) throws {
        self.mpi = mpi
        (rank, size) = try mpi.initialize()
    }

    /// Gathers `local` (the same count on every rank) from every rank, in rank order.
    public func allGather<Element: BitwiseCopyable>(_ local: [Element]) -> [Element] {
        guard let first = local.first else { return [] }
        var gathered = [Element](repeating: first, count: local.count * size)
        local.withUnsafeBytes { send in
            gathered.withUnsafeMutableBytes { receive in mpi.allGather(send, receive) }
        }
        return gathered
    }

    /// Throws unless every rank was started with the same `fingerprint` (its settings and backbone).
    public func checkSameRun(_ fingerprint: String) throws {
        var hasher = FNV1a()
        for byte in fingerprint.utf8 { hasher.add(byte) }
        let all = allGather([hasher.value])
        let differing = all.indices.filter { all[$0] != hasher.value }
        guard differing.isEmpty else { throw DataParallelError.differentRuns(rank: rank, others: differing) }
    }

    /// Ends the MPI job (every rank must call it; after it nothing else may be exchanged).
    public func finish() { mpi.finalize() }

    /// Stops every rank of the job with `code`.
    public func abort(_ code: Int32) -> Never { mpi.abort(code) }
}

/// Why a data-parallel run cannot go on.
public enum DataParallelError: Error, CustomStringConvertible, Equatable {
    /// Started by `mpirun`, but Open MPI cannot be loaded or initialised; the string says why.
    case mpiUnavailable(String)
    /// The ranks `others` were started with another fingerprint (settings or backbone) than `rank`.
    case differentRuns(rank: Int, others: [Int])
    /// `--gradient-accumulation` (`micro` micro-batches per update) is not a multiple of the rank count.
    case indivisibleAccumulation(micro: Int, ranks: Int)

    /// What went wrong and how to fix it, for the command line.
    public var description: String {
        switch self {
        case .mpiUnavailable(let reason):
            "started by mpirun, but Open MPI cannot be used: \(reason) (install Debian's openmpi-bin, which brings libopenmpi3)"
        case let .differentRuns(rank, others):
            "rank \(rank): ranks \(others.map(String.init).joined(separator: ", ")) were started with other settings or another backbone; every rank must run the same command"
        case let .indivisibleAccumulation(micro, ranks):
            "--gradient-accumulation \(micro) cannot be shared by \(ranks) ranks: give a multiple of \(ranks) (each rank computes an equal share of every update's micro-batches)"
        }
    }
}

/// 64-bit FNV-1a, for fingerprints that must agree across processes (Swift's `Hasher` is seeded per process).
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
}

/// The few Open MPI entry points data parallelism needs, resolved with `dlsym`.
/// Open MPI's handles are pointers to its predefined objects (`&ompi_mpi_comm_world`, ...).
private struct OpenMPI {
    typealias Initialize = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32
    typealias CommunicatorQuery = @convention(c) (OpaquePointer, UnsafeMutablePointer<Int32>) -> Int32
    typealias AllGather = @convention(c) (UnsafeRawPointer?, Int32, OpaquePointer, UnsafeMutableRawPointer?, Int32, OpaquePointer, OpaquePointer) -> Int32
    typealias Finalize = @convention(c) () -> Int32
    typealias Abort = @convention(c) (OpaquePointer, Int32) -> Int32

    let initializeMPI: Initialize, rankOf: CommunicatorQuery, sizeOf: CommunicatorQuery
    let allGatherMPI: AllGather, finalizeMPI: Finalize, abortMPI: Abort
    let world: OpaquePointer, byte: OpaquePointer

    init() throws {
        var handle: UnsafeMutableRawPointer?
        let names = ProcessInfo.processInfo.environment["GRAFT_MPI_LIBRARY"].map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        for name in names where handle == nil {
            // Global symbols: Open MPI's plugins, loaded later, link against them.
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
        }
        guard let handle else { throw DataParallelError.mpiUnavailable("\(names[0]) cannot be loaded (\(String(cString: dlerror())))") }
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let address = dlsym(handle, name) else { throw DataParallelError.mpiUnavailable("libmpi has no \(name): not Open MPI?") }
            return unsafeBitCast(address, to: type)
        }
        func object(_ name: String) throws -> OpaquePointer {
            guard let address = dlsym(handle, name) else { throw DataParallelError.mpiUnavailable("libmpi has no \(name): not Open MPI?") }
            return OpaquePointer(address)
        }
        initializeMPI = try symbol("MPI_Init", as: Initialize.self)
        rankOf = try symbol("MPI_Comm_rank", as: CommunicatorQuery.self)
        sizeOf = try symbol("MPI_Comm_size", as: CommunicatorQuery.self)
        allGatherMPI = try symbol("MPI_Allgather", as: AllGather.self)
        finalizeMPI = try symbol("MPI_Finalize", as: Finalize.self)
        abortMPI = try symbol("MPI_Abort", as: Abort.self)
        world = try object("ompi_mpi_comm_world")
        byte = try object("ompi_mpi_byte")
    }

    func initialize() throws -> (rank: Int, size: Int) {
        guard initializeMPI(nil, nil) == 0 else { throw DataParallelError.mpiUnavailable("MPI_Init failed") }
        var rank: Int32 = 0, size: Int32 = 0
        guard rankOf(world, &rank) == 0, sizeOf(world, &size) == 0 else {
            throw DataParallelError.mpiUnavailable("cannot query MPI_COMM_WORLD")
        }
        return (Int(rank), Int(size))
    }

    /// Gathers `send` (bytes) from every rank into `receive`, in rank order. Open MPI's
    /// default error handler aborts the job on failure, so a failed exchange never returns.
    func allGather(_ send: UnsafeRawBufferPointer, _ receive: UnsafeMutableRawBufferPointer) {
        _ = allGatherMPI(send.baseAddress, Int32(send.count), byte, receive.baseAddress, Int32(send.count), byte, world)
    }

    func finalize() { _ = finalizeMPI() }

    func abort(_ code: Int32) -> Never {
        _ = abortMPI(world, code)
        exit(code)
    }
}
