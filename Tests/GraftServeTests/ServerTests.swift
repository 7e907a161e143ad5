import HummingbirdTesting
@testable import GraftServe
