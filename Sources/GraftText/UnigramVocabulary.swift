/// A unigram vocabulary (pieces with log-probability scores) and its best-scoring
/// segmentation of symbol sequences, shared by the SentencePiece-unigram tokenizers.
struct UnigramVocabulary: Sendable {
    let scores: [Float]
    /// The UTF-8 bytes of all pieces back to back; piece `i` is `pieceStarts[i]..<pieceStarts[i + 1]`.
    private let pieceBytes: [UInt8]
    private let pieceStarts: [Int]
    /// Open-addressing hash table (linear probing) of piece ids + 1; 0 marks an empty slot.
    private let slots: [Int32]
    private let longestPieceBytes: Int
    /// The score of a symbol no piece covers: SentencePiece's `min(scores) - 10`.
    private let unknownScore: Float

    /// - Throws: ``TokenizerError`` if there are no pieces or `scores` does not match them.
    init(pieces: [String], scores: [Float]) throws {
        guard !pieces.isEmpty else { throw TokenizerError.emptyVocabulary }
        guard scores.count == pieces.count else {
            throw TokenizerError.scoreCountMismatch(pieces: pieces.count, scores: scores.count)
        }
        var bytes: [UInt8] = []
        var starts: [Int] = []
        starts.reserveCapacity(pieces.count + 1)
        for piece in pieces {
            starts.append(bytes.count)
            bytes.append(contentsOf: piece.utf8)
        }
        starts.append(bytes.count)

        var capacity = 2
        while capacity < 2 * pieces.count { capacity *= 2 }
        var slots = [Int32](repeating: 0, count: capacity)
        bytes.withUnsafeBufferPointer { blob in
            for id in pieces.indices where starts[id] < starts[id + 1] {
                let piece = UnsafeBufferPointer(rebasing: blob[starts[id]..<starts[id + 1]])
                var slot = Int(truncatingIfNeeded: Self.hash(piece)) & (capacity - 1)
                var duplicate = false
                while slots[slot] != 0 && !duplicate {
                    let other = Int(slots[slot]) - 1
                    duplicate = piece.elementsEqual(blob[starts[other]..<starts[other + 1]])
                    slot = (slot + 1) & (capacity - 1)
                }
                if !duplicate { slots[slot] = Int32(id + 1) }
            }
        }
        self.scores = scores
        self.pieceBytes = bytes
        self.pieceStarts = starts
        self.slots = slots
        self.longestPieceBytes = zip(starts.dropFirst(), starts).map { $0 - $1 }.max() ?? 0
        self.unknownScore = (scores.min() ?? 0) - 10
    }

    var count: Int { scores.count }

    var pieces: [String] { (0..<count).map { String(decoding: pieceBytes[pieceStarts[$0]..<pieceStarts[$0 + 1]], as: UTF8.self) } }

    /// The lowest id whose piece is exactly `piece`, if any.
    func id(of piece: String) -> Int? {
        let bytes = Array(piece.utf8)
        return bytes.withUnsafeBufferPointer { lookup($0, hash: Self.hash($0)) }
    }

    /// The best-scoring segmentation of `symbols`, whose `i`-th symbol is the byte
    /// range `starts[i]..<starts[i + 1]`, into pieces (never the piece `excluded`) and
    /// single unknown symbols (`id` nil), each with the symbols it covers. Ties keep
    /// the first split found (shorter start offsets and shorter pieces first).
    func segment(symbols: [UInt8], starts: [Int], excluding excluded: Int) -> [(id: Int?, symbols: Range<Int>)] {
        let n = starts.count - 1
        let unreachable: Float = -1e30
        var best = [Float](repeating: unreachable, count: n + 1)
        var piece = [Int](repeating: -1, count: n + 1)  // the piece ending at each position; -1: unknown
        var from = [Int](repeating: 0, count: n + 1)    // where that piece starts
        best[0] = 0
        symbols.withUnsafeBufferPointer { text in
            for i in 0..<n where best[i] > -1e29 {
                // Extend the piece one symbol at a time, hashing only the new bytes.
                var hash = Self.hashSeed
                var end = i + 1
                while end <= n && starts[end] - starts[i] <= longestPieceBytes {
                    hash = Self.hash(UnsafeBufferPointer(rebasing: text[starts[end - 1]..<starts[end]]), from: hash)
                    let span = UnsafeBufferPointer(rebasing: text[starts[i]..<starts[end]])
                    if let id = lookup(span, hash: hash), id != excluded {
                        let score = best[i] + scores[id]
                        if score > best[end] {
                            best[end] = score
                            piece[end] = id
                            from[end] = i
                        }
                    }
                    end += 1
                }
                let score = best[i] + unknownScore
                if score > best[i + 1] {
                    best[i + 1] = score
                    piece[i + 1] = -1
                    from[i + 1] = i
                }
            }
        }
        var pieces: [(id: Int?, symbols: Range<Int>)] = []
        var position = n
        while position > 0 {
            pieces.append((piece[position] < 0 ? nil : piece[position], from[position]..<position))
            position = from[position]
        }
        return pieces.reversed()
    }

    /// The lowest id whose piece is exactly `bytes`, if any; `hash` is `hash(bytes)`.
    private func lookup(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int? {
        pieceBytes.withUnsafeBufferPointer { blob in
            let mask = slots.count - 1
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != 0 {
                let id = Int(slots[slot]) - 1
                if bytes.elementsEqual(blob[pieceStarts[id]..<pieceStarts[id + 1]]) { return id }
                slot = (slot + 1) & mask
            }
            return nil
        }
    }

    private static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325

    /// 64-bit FNV-1a of `bytes`, continuing from `hash` (the hash of the bytes before them).
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>, from hash: UInt64 = hashSeed) -> UInt64 {
        var h = hash
        for byte in bytes {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01b3
        }
        return h
    }
}
