import Foundation
import GraftFiles
import GraftTensor

/// A PyTorch `state_dict` saved by `torch.save` (`pytorch_model.bin`): a zip
/// archive of a pickle (`PREFIX/data.pkl`) and one raw storage per tensor
/// (`PREFIX/data/KEY`).
///
/// The pickle is read by a restricted interpreter that understands only what a
/// state dict of tensors needs (dicts, tuples, strings, integers, booleans, the
/// globals `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the
/// float storage types) and refuses anything else, naming it. Nothing in the file
/// is ever executed.
public struct TorchCheckpointFile: TensorArchive {
    /// The path the file was read from.
    public let path: String
    private let data: Data
    /// Each tensor: its storage entry, element type, offset (elements) and shape.
    private let tensors: [String: TensorReference]

    struct TensorReference {
        let entry: ZipEntry
        let dtype: String
        let offset: Int
        let shape: [Int]
    }

    /// Reads and checks the archive and its pickle (tensor data is read on demand).
    /// - Throws: `FileContentError` naming what is not a state dict of float tensors.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw FileContentError(source: path, detail: "cannot be read") }
        let entries = try ZipEntry.directory(of: data, path: path)
        guard let pickle = entries.first(where: { $0.key.hasSuffix("/data.pkl") && !$0.key.dropLast(9).contains("/") }) else {
            throw FileContentError(source: path, detail: "no data.pkl: not a torch.save archive")
        }
        let prefix = String(pickle.key.dropLast("data.pkl".count))
        var unpickler = RestrictedUnpickler(bytes: [UInt8](data[pickle.value.range(in: data)]), path: path)
        guard case .dictionary(let items) = try unpickler.load() else {
            throw FileContentError(source: path, detail: "the pickle does not hold a dictionary of tensors")
        }
        var tensors: [String: TensorReference] = [:]
        for (key, value) in items {
            guard case .string(let name) = key, case let .tensor(storage, dtype, offset, shape, stride) = value else {
                throw FileContentError(source: path, detail: "the state dict maps \(key) to \(value), not a name to a tensor")
            }
            guard stride == Self.rowMajorStrides(shape) else {
                throw FileContentError(source: path, detail: "tensor \(name) is not contiguous (stride \(stride) for shape \(shape))")
            }
            guard let entry = entries[prefix + "data/" + storage] else {
                throw FileContentError(source: path, detail: "tensor \(name) names storage \(storage), which the archive does not hold")
            }
            let size = Self.storageTypes[dtype]!.size
            let (count, overflow) = shape.reduce((1, false)) { partial, dimension in
                let (product, flag) = partial.0.multipliedReportingOverflow(by: dimension)
                return (product, partial.1 || flag || dimension < 0)
            }
            guard !overflow, offset >= 0, (offset + count) * size <= entry.size else {
                throw FileContentError(source: path, detail: "tensor \(name) of shape \(shape) at offset \(offset) does not fit its storage of \(entry.size) bytes")
            }
            tensors[name] = TensorReference(entry: entry, dtype: dtype, offset: offset, shape: shape)
        }
        self.path = path
        self.data = data
        self.tensors = tensors
    }

    /// The storage types read, by torch's name.
    static let storageTypes: [String: StoredFloat] = ["FloatStorage": .float32, "HalfStorage": .float16,
                                                      "BFloat16Storage": .bfloat16, "DoubleStorage": .float64]

    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in shape.indices.dropLast().reversed() { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        return strides
    }

    /// Every tensor name, sorted.
    public var tensorNames: [String] { tensors.keys.sorted() }

    /// The tensor `name`, converted to `Float32` (half and bfloat16 widened exactly, double rounded).
    public func tensor(named name: String) throws -> Tensor {
        guard let reference = tensors[name] else { throw FileContentError(source: path, detail: "no tensor named \(name)") }
        let stored = Self.storageTypes[reference.dtype]!
        let start = reference.entry.start + reference.offset * stored.size
        let scalars = data.withUnsafeBytes { file in
            stored.decode(UnsafeRawBufferPointer(rebasing: file[start...]), count: Tensor.count(of: reference.shape))
        }
        return Tensor(shape: reference.shape, scalars: scalars)
    }
}

/// One stored (uncompressed) member of a zip archive.
struct ZipEntry {
    /// Where the member's data starts in the archive, and its size.
    let start: Int
    let size: Int

    func range(in data: Data) -> Range<Int> { (data.startIndex + start)..<(data.startIndex + start + size) }

    /// The members of the zip archive `data`, by name, from its central directory.
    static func directory(of data: Data, path: String) throws -> [String: ZipEntry] {
        let bytes = [UInt8](data)
        func fail(_ detail: String) -> FileContentError { FileContentError(source: path, detail: "not a readable zip archive: \(detail)") }
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw fail("a field at byte \(at) lies past the end") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u32(_ at: Int) throws -> Int { try u16(at) | (u16(at + 2) << 16) }
        func u64(_ at: Int) throws -> Int {
            let value = try UInt64(u32(at)) | (UInt64(u32(at + 4)) << 32)
            guard value <= UInt64(Int.max) else { throw fail("a 64-bit field at byte \(at) is out of range") }
            return Int(value)
        }
        // The end-of-central-directory record: the last "PK\u{5}\u{6}" within the final 64 KiB + 22 bytes.
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: max(0, bytes.count - 65_557), by: -1)
            .first(where: { (try? u32($0)) == 0x0605_4B50 }) else { throw fail("no end-of-central-directory record") }
        var count = try u16(end + 10), offset = try u32(end + 16)
        if count == 0xFFFF || offset == 0xFFFF_FFFF {  // zip64: the locator sits just before the record
            guard try u32(end - 20) == 0x0706_4B50 else { throw fail("zip64 fields without a zip64 locator") }
            let record = try u64(end - 12)
            guard try u32(record) == 0x0606_4B50 else { throw fail("no zip64 end-of-central-directory record") }
            (count, offset) = (try u64(record + 32), try u64(record + 48))
        }
        var entries: [String: ZipEntry] = [:]
        var at = offset
        for _ in 0..<count {
            guard try u32(at) == 0x0201_4B50 else { throw fail("a central-directory entry at byte \(at) has no signature") }
            let method = try u16(at + 10)
            var size = try u32(at + 24), local = try u32(at + 42)
            let (nameLength, extraLength, commentLength) = (try u16(at + 28), try u16(at + 30), try u16(at + 32))
            guard at + 46 + nameLength <= bytes.count else { throw fail("an entry name lies past the end") }
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            // zip64 extra field (id 1): the sizes and offset that did not fit in 32 bits, in this order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let (id, length) = (try u16(extra), try u16(extra + 2))
                if id == 1 {
                    var field = extra + 4
                    if try u32(at + 20) == 0xFFFF_FFFF { field += 8 }  // the uncompressed size comes first
                    if size == 0xFFFF_FFFF { size = try u64(field); field += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(field) }
                }
                extra += 4 + length
            }
            guard method == 0 else { throw fail("member \(name) is compressed (method \(method)); torch.save stores members") }
            guard try u32(local) == 0x0403_4B50 else { throw fail("member \(name) has no local header") }
            let start = try local + 30 + u16(local + 26) + u16(local + 28)
            guard start >= 0, start + size <= bytes.count else { throw fail("member \(name) lies past the end") }
            entries[name] = ZipEntry(start: start, size: size)
            at += 46 + nameLength + extraLength + commentLength
        }
        return entries
    }
}

/// A pickle interpreter for state dicts: the values it can build, and nothing that runs code.
struct RestrictedUnpickler {
    indirect enum Value: CustomStringConvertible {
        case none, bool(Bool), int(Int), string(String)
        case tuple([Value]), list([Value]), dictionary([(Value, Value)])
        case global(String)
        case storage(key: String, dtype: String)
        case tensor(storage: String, dtype: String, offset: Int, shape: [Int], stride: [Int])
        case mark

        var description: String {
            switch self {
            case .none: "None"
            case .bool(let value): "\(value)"
            case .int(let value): "\(value)"
            case .string(let value): "'\(value)'"
            case .tuple(let items): "(\(items.map(\.description).joined(separator: ", ")))"
            case .list: "a list"
            case .dictionary: "a dict"
            case .global(let name): name
            case .storage(let key, _): "storage \(key)"
            case .tensor: "a tensor"
            case .mark: "a mark"
            }
        }
    }

    /// The globals a state dict refers to; any other is refused.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
    ]

    let bytes: [UInt8]
    let path: String
    var position = 0
    var stack: [Value] = []
    var memo: [Int: Value] = [:]

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    func fail(_ detail: String) -> FileContentError { FileContentError(source: path, detail: "data.pkl: \(detail)") }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, position + count <= bytes.count else { throw fail("cut short at byte \(position)") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    mutating func integer(_ count: Int) throws -> Int {
        try take(count).reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    mutating func pop() throws -> Value {
        guard let value = stack.popLast() else { throw fail("pops an empty stack at byte \(position)") }
        return value
    }

    /// The values above the topmost mark, which is removed.
    mutating func popToMark() throws -> [Value] {
        guard let mark = stack.lastIndex(where: { if case .mark = $0 { true } else { false } }) else {
            throw fail("no mark on the stack at byte \(position)")
        }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[(mark + 1)...])
    }

    mutating func addItems(_ items: [Value]) throws {
        guard items.count % 2 == 0, case .dictionary(var entries) = try pop() else { throw fail("sets items on something that is not a dict") }
        for pair in stride(from: 0, to: items.count, by: 2) { entries.append((items[pair], items[pair + 1])) }
        stack.append(.dictionary(entries))
    }

    /// Runs the pickle to its STOP and returns the value it built.
    mutating func load() throws -> Value {
        while true {
            let opcode = try take(1).first!
            switch opcode {
            case 0x80: _ = try take(1)  // PROTO
            case 0x95: _ = try take(8)  // FRAME
            case 0x2E: return try pop()  // STOP
            case 0x28: stack.append(.mark)  // MARK
            case 0x7D: stack.append(.dictionary([]))  // EMPTY_DICT
            case 0x5D: stack.append(.list([]))  // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
            case 0x4E: stack.append(.none)  // NONE
            case 0x88, 0x89: stack.append(.bool(opcode == 0x88))  // NEWTRUE, NEWFALSE
            case 0x4B: stack.append(.int(try integer(1)))  // BININT1
            case 0x4D: stack.append(.int(try integer(2)))  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try integer(4)))))  // BININT
            case 0x8A:  // LONG1
                let count = try integer(1)
                guard count <= 8 else { throw fail("an integer of \(count) bytes") }
                let raw = try integer(count)
                stack.append(.int(count == 8 || count == 0 ? raw : (raw << (64 - 8 * count)) >> (64 - 8 * count)))
            case 0x58, 0x8C:  // BINUNICODE, SHORT_BINUNICODE
                let count = try integer(opcode == 0x58 ? 4 : 1)
                stack.append(.string(String(decoding: try take(count), as: UTF8.self)))
            case 0x74: stack.append(.tuple(try popToMark()))  // TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                let count = Int(opcode - 0x84)
                guard stack.count >= count else { throw fail("builds a tuple of \(count) from a shorter stack") }
                stack.append(.tuple(Array(stack.suffix(count))))
                stack.removeSubrange((stack.count - count - 1)..<(stack.count - 1))
            case 0x71: memo[try integer(1)] = stack.last  // BINPUT
            case 0x72: memo[try integer(4)] = stack.last  // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last  // MEMOIZE
            case 0x68, 0x6A:  // BINGET, LONG_BINGET
                let key = try integer(opcode == 0x68 ? 1 : 4)
                guard let value = memo[key] else { throw fail("refers to memo \(key), which is unset") }
                stack.append(value)
            case 0x63:  // GLOBAL "module\nname\n"
                func line() throws -> String {
                    guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("a global without its line end") }
                    defer { position = end + 1 }
                    return String(decoding: bytes[position..<end], as: UTF8.self)
                }
                stack.append(try global(try line() + "." + line()))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("a global that is not two strings") }
                stack.append(try global(module + "." + name))
            case 0x51:  // BINPERSID: ('storage', storage type, key, location, numel)
                guard case .tuple(let id) = try pop(), id.count == 5, case .string("storage") = id[0], case .global(let type) = id[1],
                      case .string(let key) = id[2] else { throw fail("a persistent id that is not a tensor storage") }
                stack.append(.storage(key: key, dtype: String(type.dropFirst("torch.".count))))
            case 0x52:  // REDUCE
                guard case .tuple(let arguments) = try pop(), case .global(let callable) = try pop() else {
                    throw fail("calls something that is not an allowed global")
                }
                stack.append(try call(callable, arguments))
            case 0x73:  // SETITEM
                let value = try pop(), key = try pop()
                try addItems([key, value])
            case 0x75: try addItems(try popToMark())  // SETITEMS
            case 0x61, 0x65:  // APPEND, APPENDS
                let items = opcode == 0x61 ? [try pop()] : try popToMark()
                guard case .list(let list) = try pop() else { throw fail("appends to something that is not a list") }
                stack.append(.list(list + items))
            case 0x62: _ = try pop()  // BUILD: the state of an OrderedDict (torch's _metadata), not needed
            default:
                throw fail(String(format: "pickle opcode 0x%02X at byte %d is not one a state dict needs", opcode, position - 1))
            }
        }
    }

    func global(_ name: String) throws -> Value {
        guard Self.allowedGlobals.contains(name) else {
            throw fail("refers to \(name), which a state dict of tensors does not need; Graft never runs pickled code")
        }
        return .global(name)
    }

    func call(_ callable: String, _ arguments: [Value]) throws -> Value {
        switch callable {
        case "collections.OrderedDict" where arguments.isEmpty:
            return .dictionary([])
        case "torch._utils._rebuild_tensor_v2":
            guard arguments.count >= 4, case let .storage(key, dtype) = arguments[0], case .int(let offset) = arguments[1],
                  case .tuple(let size) = arguments[2], case .tuple(let stride) = arguments[3] else {
                throw fail("rebuilds a tensor from arguments \(Value.tuple(arguments))")
            }
            func integers(_ values: [Value]) throws -> [Int] {
                try values.map { value in
                    guard case .int(let number) = value else { throw fail("a tensor size or stride of \(value)") }
                    return number
                }
            }
            guard TorchCheckpointFile.storageTypes[dtype] != nil else { throw fail("a tensor of \(dtype); Graft reads float tensors") }
            return .tensor(storage: key, dtype: dtype, offset: offset, shape: try integers(size), stride: try integers(stride))
        default:
            throw fail("calls \(callable) with \(arguments.count) arguments")
        }
    }
}
