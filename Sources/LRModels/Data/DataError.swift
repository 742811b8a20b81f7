/// Why a dataset could not be loaded. `description` is one line naming the file, what is wrong, and what to do.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, Equatable {
        /// A file or folder that does not exist.
        case missing
        /// Exists but cannot be read (permissions, a folder where a file was expected …).
        case unreadable
        /// Shorter than its header says.
        case truncated
        /// Not an IDX file (bad magic number), or a gzip stream that does not decompress.
        case badFormat
        /// An IDX element type other than unsigned byte.
        case unsupportedType
        /// Well-formed files that do not fit together or are not images/labels (wrong rank, count mismatch …).
        case mismatch
        /// A data spec that names nothing lrtop knows.
        case unknownSpec
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// The advice appended to file problems.
    static let redownload = "re-download it or re-install dataset-fashion-mnist"
}
