@_exported import GraftAdapters
@_exported import GraftAutodiff
@_exported import GraftData
@_exported import GraftFiles
@_exported import GraftFeatureModels
@_exported import GraftIO
@_exported import GraftNN
@_exported import GraftTensor
@_exported import GraftText
@_exported import GraftTrain

/// Graft's release version.
public let version = "0.1.0"
