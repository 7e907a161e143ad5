import Foundation

/// A value of a parsed JSON document with its key path, for reading `tokenizer.json`
/// field by field: every error names where in the file it is.
struct JSONNode {
    let value: Any
    let path: String

    /// Parses `data`.
    /// - Throws: ``TokenizerError/invalidSpecification(_:)`` if it is not JSON.
    init(parsing data: Data) throws {
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.invalidSpecification("not JSON (\((error as NSError).localizedDescription))")
        }
        path = ""
    }

    private init(_ value: Any, path: String) {
        self.value = value
        self.path = path
    }

    var isNull: Bool { value is NSNull }

    /// An error at this node.
    func invalid(_ detail: String) -> TokenizerError {
        .invalidSpecification(path.isEmpty ? detail : "at \(path): \(detail)")
    }

    /// The member `key` of this object.
    func child(_ key: String) throws -> JSONNode {
        guard let node = try optional(key) else { throw invalid("missing key \(key)") }
        return node
    }

    /// The member `key` of this object, nil if it is absent or null.
    func optional(_ key: String) throws -> JSONNode? {
        guard let object = value as? [String: Any] else { throw invalid("expected an object") }
        guard let member = object[key], !(member is NSNull) else { return nil }
        return JSONNode(member, path: path.isEmpty ? key : "\(path).\(key)")
    }

    /// The members of this object, in no particular order.
    func members() throws -> [(key: String, node: JSONNode)] {
        guard let object = value as? [String: Any] else { throw invalid("expected an object") }
        return object.map { ($0.key, JSONNode($0.value, path: path.isEmpty ? $0.key : "\(path).\($0.key)")) }
    }

    func array() throws -> [JSONNode] {
        guard let items = value as? [Any] else { throw invalid("expected an array") }
        return items.enumerated().map { JSONNode($1, path: "\(path)[\($0)]") }
    }

    func string() throws -> String {
        guard let string = value as? String else { throw invalid("expected a string") }
        return string
    }

    func string(_ key: String) throws -> String { try child(key).string() }

    func number() throws -> Double {
        guard let number = value as? NSNumber else { throw invalid("expected a number") }
        return number.doubleValue
    }

    func integer() throws -> Int {
        let number = try number()
        guard number.rounded() == number, abs(number) < 1e15 else { throw invalid("expected an integer, found \(number)") }
        return Int(number)
    }

    func bool() throws -> Bool {
        guard let bool = value as? Bool else { throw invalid("expected true or false") }
        return bool
    }
}
