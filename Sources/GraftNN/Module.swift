import GraftAutodiff
import GraftTensor

/// A building block with named parameters and named children.
///
/// Names are dotted paths equal to the Hugging Face checkpoint names
/// (`encoder.layer.3.attention.self.query.weight`); the same names serve
/// checkpoint files, optimizer state and adapter targeting.
public protocol Module: AnyObject {
    /// This module's own parameters, by local name (`weight`, `bias`).
    var localParameters: [(name: String, parameter: Parameter)] { get }
    /// Direct sub-modules, by local name.
    var children: [(name: String, module: any Module)] { get }
}

extension Module {
    /// None: by default a module holds no parameters of its own.
    public var localParameters: [(name: String, parameter: Parameter)] { [] }
    /// None: by default a module has no sub-modules.
    public var children: [(name: String, module: any Module)] { [] }

    /// Every parameter of this module and its descendants, by dotted name.
    /// A parameter shared by several modules (tied weights) appears once, under
    /// the first name found.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        var seen = Set<ObjectIdentifier>()
        var result: [(name: String, parameter: Parameter)] = []
        func visit(_ module: any Module, prefix: String) {
            for (name, parameter) in module.localParameters where seen.insert(ObjectIdentifier(parameter)).inserted {
                result.append((prefix + name, parameter))
            }
            for (name, child) in module.children { visit(child, prefix: prefix + name + ".") }
        }
        visit(self, prefix: "")
        return result
    }

    /// The trainable parameters, by dotted name.
    public func trainableParameters() -> [(name: String, parameter: Parameter)] {
        namedParameters().filter { $0.parameter.isTrainable }
    }

    /// Marks every parameter frozen (or trainable again).
    public func setTrainable(_ trainable: Bool) {
        for (_, parameter) in namedParameters() { parameter.isTrainable = trainable }
    }
}

extension Optional where Wrapped == Tape {
    /// The step variable of `parameter`: tracked on a tape, constant without one.
    func variable(_ parameter: Parameter) -> Variable {
        self?.variable(parameter) ?? Variable(parameter.value)
    }
}

/// A parameter that could not be loaded.
public enum ParameterLoadingError: Error, CustomStringConvertible, Equatable {
    /// `loadParameters` found no tensor for the parameter with this dotted name.
    case missing(name: String)
    /// The source's tensor for the parameter has another shape than the parameter.
    case shapeMismatch(name: String, expected: [Int], found: [Int])

    /// A one-line message naming the parameter by its dotted name (and, for a mismatch, both shapes).
    public var description: String {
        switch self {
        case let .missing(name): "parameter \(name) is missing from the source"
        case let .shapeMismatch(name, expected, found): "parameter \(name): expected shape \(expected), found \(found)"
        }
    }
}

extension Module {
    /// Replaces every parameter's value with the tensor `source` returns for its
    /// dotted name, checking shapes. Throws on the first missing or mis-shaped one.
    public func loadParameters(from source: (String) throws -> Tensor?) throws {
        for (name, parameter) in namedParameters() {
            guard let tensor = try source(name) else { throw ParameterLoadingError.missing(name: name) }
            guard tensor.shape == parameter.value.shape else {
                throw ParameterLoadingError.shapeMismatch(name: name, expected: parameter.value.shape, found: tensor.shape)
            }
            parameter.value = tensor
        }
    }
}
