import Foundation

/// A walk of an HDF5 file's structure before libhdf5 reads it. libhdf5 1.10 trusts what the file
/// stores: corrupt attribute messages make it read past its buffers, allocate gigabytes or crash
/// cleaning up, and a corrupt global heap makes it loop forever (all found by fuzzing). Graft writes
/// what libhdf5 and h5py write by default (superblock version 0 or 1, 8-byte offsets and lengths,
/// version-1 object headers, symbol-table groups, string attributes); the walk follows every group
/// from the root and checks that each object header message, continuation, B-tree node, symbol
/// table node, local heap, link name, attribute, dataspace and variable-length string fits where it
/// is stored and decodes as libhdf5 expects, and refuses what Graft never writes (dense link and
/// attribute storage, version-2 object headers, shared messages, attributes that are not strings,
/// objects linked twice, datasets not stored contiguously).
struct HDF5Structure {
    private let path: String
    private let file: UnsafeRawBufferPointer
    /// The base address that the file's addresses are relative to.
    private var base = 0
    /// The end of the file's data (libhdf5 refuses to read past it): the superblock's end-of-file address.
    private var end: Int
    /// The most entries a group B-tree node and a symbol table node may hold (twice the superblock's K values).
    private var maxTreeEntries = 0, maxSymbols = 0
    private var pending: [Item] = []
    private var seen: Set<Seen> = []
    /// The objects of each global heap collection (by its position): their sizes by index.
    private var globalHeaps: [Int: [Int: Int]] = [:]

    private struct Seen: Hashable {
        var kind: String, position: Int
    }

    private enum Item {
        case objectHeader(Int)
        case continuation(start: Int, size: Int)
        case group(tree: Int, heap: Int)
        case tree(Int, level: Int?, heap: LocalHeap)
        case symbolNode(Int, heap: LocalHeap)
    }

    /// A group's local heap: where its link names are.
    private struct LocalHeap {
        var data: Int, size: Int
    }

    /// Throws `HDF5Error.cannotOpen` naming the byte and the structure unless `path` passes the walk.
    static func check(_ path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw HDF5Error.cannotOpen(file: path, reason: "cannot be read")
        }
        try data.withUnsafeBytes { file in
            var walk = HDF5Structure(path: path, file: file)
            try walk.walk()
        }
    }

    private init(path: String, file: UnsafeRawBufferPointer) {
        self.path = path
        self.file = file
        end = file.count
    }

    private func corrupt(_ offset: Int, _ detail: String) -> HDF5Error {
        .cannotOpen(file: path, reason: "corrupt \(detail) at byte \(offset)")
    }

    /// The little-endian unsigned integer of `size` bytes at `offset`; the caller has checked the bounds.
    private func word(_ offset: Int, _ size: Int) -> Int {
        (0..<size).reduce(0) { $0 | Int(file[offset + $1]) << (8 * $1) }
    }

    /// Throws unless `size` bytes from `offset` lie inside the file.
    private func require(_ offset: Int, _ size: Int, _ what: String) throws {
        guard offset >= 0, size >= 0, size <= end, offset <= end - size else {
            throw corrupt(offset, "\(what) (\(size) bytes past the end of the file's \(end) bytes of data)")
        }
    }

    /// The absolute position of the stored address at `offset`, checked to lie inside the file.
    private func address(at offset: Int, _ what: String) throws -> Int {
        let stored = UInt64(truncatingIfNeeded: word(offset, 8))
        guard stored < UInt64(end), base + Int(stored) < end else {
            throw corrupt(offset, "\(what) address \(stored) outside the file's \(end) bytes of data")
        }
        return base + Int(stored)
    }

    private func matches(_ signature: String, at offset: Int) -> Bool {
        matches(Array(signature.utf8), at: offset)
    }

    private func matches(_ bytes: [UInt8], at offset: Int) -> Bool {
        offset + bytes.count <= file.count && bytes.indices.allSatisfy { file[offset + $0] == bytes[$0] }
    }

    /// Every global heap collection (where variable-length strings live, `GCOL` version 1) must be a
    /// walk of objects that each advance and end inside it.
    private mutating func checkGlobalHeaps() throws {
        guard let start = file.baseAddress else { return }
        var from = 0
        while from < end, let found = memchr(start + from, Int32(UInt8(ascii: "G")), end - from) {
            let collection = start.distance(to: found)
            from = collection + 1
            // Signature, version 1, 3 reserved bytes, an 8-byte collection size (at least 4,096 bytes, in the file).
            guard collection + 16 <= end, matches("GCOL", at: collection), file[collection + 4] == 1 else { continue }
            let size = word(collection + 8, 8)
            guard size >= 4096, size <= end - collection else { continue }
            var object = collection + 16
            let end = collection + size
            var objects: [Int: Int] = [:]
            while object + 16 <= end {
                let index = word(object, 2), objectSize = word(object + 8, 8)
                let advance = index == 0 ? objectSize : 16 + (objectSize + 7) / 8 * 8
                guard objectSize < size, advance > 0, advance <= end - object else {
                    throw HDF5Error.cannotOpen(file: path, reason: "corrupt global heap (variable-length strings) at byte \(object): "
                        + "object \(index) of \(objectSize) bytes does not fit its collection of \(size)")
                }
                if index > 0 { objects[index] = objectSize }
                object += advance
            }
            globalHeaps[collection] = objects
        }
    }

    /// Walks the structure from the superblock (at byte 0, 512, 1024, ... as libhdf5 looks for it),
    /// after the global heaps.
    private mutating func walk() throws {
        var superblock = 0
        while !matches([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A], at: superblock) {
            superblock = superblock == 0 ? 512 : superblock * 2
            guard superblock < file.count else { return }  // libhdf5 will say it is not HDF5
        }
        try require(superblock, 16, "superblock")
        let version = Int(file[superblock + 8])
        guard version <= 1 else {
            throw corrupt(superblock + 8, "superblock: version \(version) (Graft reads versions 0 and 1, what libhdf5 writes by default)")
        }
        guard file[superblock + 13] == 8, file[superblock + 14] == 8 else {
            throw corrupt(superblock + 13, "superblock: offsets of \(file[superblock + 13]) and lengths of \(file[superblock + 14]) bytes (Graft reads 8)")
        }
        let addresses = superblock + (version == 0 ? 24 : 28)  // base, free space, end of file, driver, root entry
        try require(superblock, addresses + 72 - superblock, "superblock")
        maxSymbols = 2 * word(superblock + 16, 2)
        maxTreeEntries = 2 * word(superblock + 18, 2)
        guard word(addresses + 24, 8) == -1 else { throw corrupt(addresses + 24, "superblock: a driver information block, which Graft never writes") }
        let storedBase = UInt64(truncatingIfNeeded: word(addresses, 8))
        guard storedBase < UInt64(file.count) else { throw corrupt(addresses, "superblock: base address \(storedBase)") }
        base = Int(storedBase)
        let storedEnd = word(addresses + 16, 8)
        guard storedEnd >= 0, storedEnd <= file.count - base else {
            throw corrupt(addresses + 16, "superblock: the file's data ends at \(storedEnd) but the file has \(file.count) bytes (truncated?)")
        }
        end = base + storedEnd
        try checkGlobalHeaps()
        try symbolTableEntry(at: addresses + 32)
        while let item = pending.popLast() {
            switch item {
            case .objectHeader(let header): try objectHeader(at: header)
            case .continuation(let start, let size): try messages(from: start, size: size)
            case .group(let tree, let heap): try group(tree: tree, heap: heap)
            case .tree(let node, let level, let heap): try tree(at: node, level: level, heap: heap)
            case .symbolNode(let node, let heap): try symbolNode(at: node, heap: heap)
            }
        }
    }

    /// Queues `item`, the `kind` of structure at file position `position`, unless it was queued before
    /// (groups may link in cycles).
    private mutating func visit(_ kind: String, _ position: Int, _ item: Item) {
        if seen.insert(Seen(kind: kind, position: position)).inserted { pending.append(item) }
    }

    /// A symbol table entry (link name offset, object header address, cache type, scratch pad).
    /// Each object is linked once, as Graft writes them: libhdf5 1.10 visits a group that links back to
    /// itself or to a group above it forever.
    private mutating func symbolTableEntry(at entry: Int) throws {
        try require(entry, 40, "symbol table entry")
        let header = try address(at: entry + 8, "object header")
        guard !seen.contains(Seen(kind: "object header", position: header)) else {
            throw corrupt(entry, "symbol table entry: a second link to the object at byte \(header) (Graft links each object once)")
        }
        visit("object header", header, .objectHeader(header))
        if word(entry + 16, 4) == 1 {  // a group, its B-tree and local heap cached in the scratch pad
            let tree = try address(at: entry + 24, "group B-tree"), heap = try address(at: entry + 32, "local heap")
            visit("group", tree, .group(tree: tree, heap: heap))
        }
    }

    /// A version-1 object header: 16 bytes, then messages filling the header's size.
    private mutating func objectHeader(at header: Int) throws {
        try require(header, 16, "object header")
        guard !matches("OHDR", at: header) else { throw corrupt(header, "object header: version 2 (Graft reads version 1)") }
        guard file[header] == 1 else { throw corrupt(header, "object header: version \(file[header])") }
        try messages(from: header + 16, size: word(header + 8, 4))
    }

    /// The messages of an object header chunk: type (2 bytes), size (2), flags (1), 3 reserved, then the message.
    private mutating func messages(from start: Int, size: Int) throws {
        try require(start, size, "object header chunk")
        var message = start
        let end = start + size
        while message + 8 <= end {
            let type = word(message, 2), length = word(message + 2, 2), flags = file[message + 4]
            let body = message + 8
            guard length <= end - body else {
                throw corrupt(message, "object header message of type \(type): \(length) bytes past its chunk's end at byte \(end)")
            }
            guard flags & 0x02 == 0 else { throw corrupt(message, "object header message of type \(type): shared, which Graft never writes") }
            try self.message(type: type, at: body, length: length)
            message = body + length
        }
    }

    private mutating func message(type: Int, at body: Int, length: Int) throws {
        func need(_ bytes: Int, _ what: String) throws {
            guard length >= bytes else { throw corrupt(body, "\(what) message of \(length) bytes (at least \(bytes) needed)") }
        }
        switch type {
        case 0x01:
            _ = try elementCount(ofDataspaceAt: body, length: length)
        case 0x02, 0x06, 0x15:
            throw corrupt(body, "object header: link or attribute-info message (type \(type)), dense storage Graft never writes")
        case 0x03:
            try need(8, "datatype")
            guard (1...3).contains(file[body] >> 4), file[body] & 0x0F <= 10 else {
                throw corrupt(body, "datatype message: version \(file[body] >> 4), class \(file[body] & 0x0F)")
            }
        case 0x08:  // data layout: Graft writes contiguous storage (version 3, class 1: address and size)
            try need(18, "data layout")
            guard file[body] == 3, file[body + 1] == 1 else {
                throw corrupt(body, "data layout message: version \(file[body]), class \(file[body + 1]) (Graft writes contiguous storage, version 3)")
            }
            let size = word(body + 10, 8)
            if word(body + 2, 8) != -1 { try require(try address(at: body + 2, "dataset storage"), size, "dataset storage") }
        case 0x0C:
            try attribute(at: body, length: length)
        case 0x10:
            try need(16, "continuation")
            let start = try address(at: body, "continuation"), size = word(body + 8, 8)
            try require(start, size, "object header continuation")
            visit("continuation", start, .continuation(start: start, size: size))
        case 0x11:
            try need(16, "symbol table")
            let tree = try address(at: body, "group B-tree"), heap = try address(at: body + 8, "local heap")
            visit("group", tree, .group(tree: tree, heap: heap))
        default:
            break
        }
    }

    /// The number of elements of a dataspace message (version 1: 8 bytes then the dimensions; version 2: 4).
    private func elementCount(ofDataspaceAt body: Int, length: Int) throws -> Int {
        guard length >= 4 else { throw corrupt(body, "dataspace message of \(length) bytes") }
        let version = Int(file[body]), rank = Int(file[body + 1]), flags = file[body + 2]
        guard version == 1 || version == 2, rank <= 32 else {
            throw corrupt(body, "dataspace message: version \(version), rank \(rank) (at most 32)")
        }
        let dimensions = body + (version == 1 ? 8 : 4)
        let needed = dimensions - body + rank * 8 * (flags & 1 == 1 ? 2 : 1)
        guard needed <= length else {
            throw corrupt(body, "dataspace message: \(rank) dimensions need \(needed) bytes, the message has \(length)")
        }
        if version == 2 {  // the dataspace's class: scalar (0), simple (1) or null (2)
            let kind = file[body + 3]
            guard kind <= 2, kind == 1 || rank == 0 else { throw corrupt(body, "dataspace message: class \(kind) of rank \(rank)") }
            if kind == 2 { return 0 }
        }
        return try (0..<rank).reduce(1) { count, axis in
            let size = word(dimensions + 8 * axis, 8)
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else { throw corrupt(dimensions + 8 * axis, "dataspace message: more elements than can be counted") }
            return product
        }
    }

    /// An attribute message: version, flags, the sizes of its name, datatype and dataspace, then
    /// those (each padded to 8 bytes in version 1; version 3 adds a character-set byte) and its data.
    private func attribute(at body: Int, length: Int) throws {
        guard length >= 8 else { throw corrupt(body, "attribute message of \(length) bytes") }
        let version = Int(file[body]), flags = file[body + 1]
        guard (1...3).contains(version) else { throw corrupt(body, "attribute message: version \(version)") }
        let nameSize = word(body + 2, 2), datatypeSize = word(body + 4, 2), dataspaceSize = word(body + 6, 2)
        func padded(_ size: Int) -> Int { version == 1 ? (size + 7) / 8 * 8 : size }
        let datatype = body + (version == 3 ? 9 : 8) + padded(nameSize)
        let dataspace = datatype + padded(datatypeSize)
        let data = dataspace + padded(dataspaceSize)
        guard nameSize > 0, data <= body + length else {
            throw corrupt(body, "attribute message of \(length) bytes: a name, datatype and dataspace of \(nameSize), \(datatypeSize) "
                + "and \(dataspaceSize) bytes do not fit")
        }
        // libhdf5 1.10 crashes cleaning up after an attribute it cannot decode, so only what Graft writes is let through.
        let name = datatype - padded(nameSize)
        guard memchr(file.baseAddress! + name, 0, nameSize).map({ file.baseAddress!.distance(to: $0) }) == name + nameSize - 1 else {
            throw corrupt(body, "attribute message: a name of \(nameSize) bytes that does not end in its only zero byte")
        }
        guard version == 1 || flags == 0 else { throw corrupt(body, "attribute message: flags \(flags) (shared parts Graft never writes)") }
        let elements = try elementCount(ofDataspaceAt: dataspace, length: dataspaceSize)
        let (elementSize, variableLength) = try stringType(at: datatype, length: datatypeSize)
        let (dataSize, overflow) = elementSize.multipliedReportingOverflow(by: elements)
        guard !overflow, dataSize <= body + length - data else {
            throw corrupt(body, "attribute message of \(length) bytes: its data does not fit")
        }
        if variableLength { try variableLengthStrings(from: data, count: elements) }
    }

    /// The element size of a string datatype (datatype versions 1-3): fixed-length (class 3), or
    /// variable-length (class 9, string, 16 bytes stored per element, a base type of 1-byte characters).
    private func stringType(at datatype: Int, length: Int) throws -> (elementSize: Int, variableLength: Bool) {
        func valid(_ type: Int, _ typeClass: Int, size: Int?) -> Bool {
            (1...3).contains(Int(file[type] >> 4)) && Int(file[type] & 0x0F) == typeClass && size.map { word(type + 4, 4) == $0 } ?? (word(type + 4, 4) > 0)
        }
        // Padding (null-terminated, null-padded, space-padded) and character set (ASCII, UTF-8) in the class bits.
        if length >= 8, valid(datatype, 3, size: nil), file[datatype + 1] & 0x0F <= 2, file[datatype + 1] >> 4 <= 1 {
            return (word(datatype + 4, 4), false)
        }
        if length >= 20, valid(datatype, 9, size: 16), file[datatype + 1] & 0x0F == 1, file[datatype + 1] >> 4 <= 2, file[datatype + 2] & 0x0F <= 1,
           valid(datatype + 8, 0, size: 1) {
            return (16, true)
        }
        throw corrupt(datatype, "attribute datatype of \(length) bytes: not a string of datatype version 1 to 3 (Graft reads string attributes)")
    }

    /// Variable-length strings (16 bytes each: the length, the global heap collection's address and
    /// the object's index in it; libhdf5 1.10 reads whatever index it is given) must name an object of
    /// a collection found by `checkGlobalHeaps` that holds that many bytes.
    private func variableLengthStrings(from data: Int, count: Int) throws {
        for element in 0..<count {
            let position = data + 16 * element
            let length = word(position, 4), collection = base + word(position + 4, 8), index = word(position + 12, 4)
            guard length > 0 else { continue }
            guard let size = globalHeaps[collection]?[index], length <= size else {
                throw corrupt(position, "variable-length string: object \(index) of the global heap collection at byte "
                    + "\(collection) does not hold \(length) bytes")
            }
        }
    }

    /// A group: its local heap (`HEAP`, version 0: data segment size, free list, data segment address)
    /// and its version-1 B-tree of symbol table nodes.
    private mutating func group(tree: Int, heap: Int) throws {
        try require(heap, 32, "local heap")
        guard matches("HEAP", at: heap), file[heap + 4] == 0 else { throw corrupt(heap, "local heap: no HEAP signature of version 0") }
        let size = word(heap + 8, 8), data = try address(at: heap + 24, "local heap data")
        try require(data, size, "local heap data segment")
        visit("B-tree node", tree, .tree(tree, level: nil, heap: LocalHeap(data: data, size: size)))
    }

    /// A group B-tree node (`TREE`, node type 0): level, entries, two siblings, then keys (heap
    /// offsets) between children: symbol table nodes at level 0, nodes one level down above it.
    private mutating func tree(at node: Int, level expected: Int?, heap: LocalHeap) throws {
        try require(node, 24, "group B-tree node")
        guard matches("TREE", at: node), file[node + 4] == 0 else { throw corrupt(node, "group B-tree node: no TREE signature of type 0") }
        let level = Int(file[node + 5]), entries = word(node + 6, 2)
        if let expected, level != expected { throw corrupt(node + 5, "group B-tree node: level \(level) below a node of level \(expected + 1)") }
        guard entries <= maxTreeEntries else { throw corrupt(node + 6, "group B-tree node: \(entries) entries (at most \(maxTreeEntries))") }
        try require(node + 24, entries * 16 + 8, "group B-tree node's \(entries) entries")
        for entry in 0..<entries {
            let child = try address(at: node + 24 + 16 * entry + 8, "group B-tree child")
            if level == 0 { visit("symbol table node", child, .symbolNode(child, heap: heap)) }
            else { visit("B-tree node", child, .tree(child, level: level - 1, heap: heap)) }
        }
    }

    /// A symbol table node (`SNOD`, version 1): the number of symbols, then their entries, each
    /// naming its link by an offset into the group's local heap.
    private mutating func symbolNode(at node: Int, heap: LocalHeap) throws {
        try require(node, 8, "symbol table node")
        guard matches("SNOD", at: node), file[node + 4] == 1 else { throw corrupt(node, "symbol table node: no SNOD signature of version 1") }
        let symbols = word(node + 6, 2)
        guard symbols <= maxSymbols else { throw corrupt(node + 6, "symbol table node: \(symbols) symbols (at most \(maxSymbols))") }
        try require(node + 8, symbols * 40, "symbol table node's \(symbols) entries")
        for symbol in 0..<symbols {
            let entry = node + 8 + 40 * symbol, name = word(entry, 8)
            guard name >= 0, name < heap.size, memchr(file.baseAddress! + heap.data + name, 0, heap.size - name) != nil else {
                throw corrupt(entry, "symbol table entry: link name at offset \(name) of a \(heap.size)-byte local heap")
            }
            try symbolTableEntry(at: entry)
        }
    }
}
