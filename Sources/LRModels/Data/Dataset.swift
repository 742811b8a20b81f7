import LRTensor

/// One split of a dataset: samples stored back to back, row-major, as Float32.
public struct DataSplit: Sendable {
    /// `count · sampleSize` values; sample i is `images[i·sampleSize ..< (i+1)·sampleSize]`.
    public var images: [Float]
    public var labels: [Int32]
    public var count: Int { labels.count }

    public init(images: [Float], labels: [Int32]) {
        self.images = images
        self.labels = labels
    }
}

/// A classification dataset: train and test splits of samples of one shape.
public struct Dataset: Sendable {
    /// A human name: "Fashion-MNIST", "spirals".
    public var name: String
    /// One sample's shape: [1, 28, 28] for the MNIST family, [2] for spirals.
    public var sampleShape: [Int]
    public var classCount: Int
    public var train: DataSplit
    public var test: DataSplit

    public init(name: String, sampleShape: [Int], classCount: Int, train: DataSplit, test: DataSplit) {
        self.name = name
        self.sampleShape = sampleShape
        self.classCount = classCount
        self.train = train
        self.test = test
    }

    /// Values per sample.
    public var sampleSize: Int { sampleShape.reduce(1, *) }

    /// Mean and standard deviation (population) of every value of the training split.
    public func trainStatistics() -> (mean: Float, std: Float) {
        train.images.withUnsafeBufferPointer { p in
            let n = p.count
            guard n > 0 else { return (0, 1) }
            var sum: Double = 0, sq: Double = 0
            var i = 0
            // Float partial sums over blocks keep the loop vectorised; Double across blocks keeps it accurate.
            while i < n {
                let end = min(n, i + 4096)
                var s: Float = 0, q: Float = 0
                for j in i..<end { let v = p[j]; s += v; q += v * v }
                sum += Double(s); sq += Double(q)
                i = end
            }
            let mean = sum / Double(n)
            return (Float(mean), Float(max(sq / Double(n) - mean * mean, 0).squareRoot()))
        }
    }

    /// The dataset with every value mapped to (x − mean) / std, both splits (torchvision's `Normalize`).
    public func normalized(mean: Float, std: Float) -> Dataset {
        precondition(std > 0, "normalize: std must be positive")
        var copy = self
        let inv = 1 / std
        for keyPath in [\Dataset.train.images, \Dataset.test.images] {
            copy[keyPath: keyPath].withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = (p[i] - mean) * inv }
            }
        }
        return copy
    }
}

/// A loaded dataset and how it was found.
public struct LoadedData: Sendable {
    public var dataset: Dataset
    /// Where it came from: a folder, or "synthetic:spirals".
    public var source: String
    /// A one-line notice for the user when lrtop fell back to something other than what was asked for.
    public var notice: String?

    public init(dataset: Dataset, source: String, notice: String? = nil) {
        self.dataset = dataset
        self.source = source
        self.notice = notice
    }
}

/// Resolves a data spec (the CLI's `--data`) to a dataset.
public enum DataLoader {
    /// Where Debian's `dataset-fashion-mnist` installs the files; used when no spec is given.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// The built-in datasets, as `synthetic:<name>`.
    public static let syntheticNames = ["spirals"]
    /// The four files a data folder must hold (each raw or with `.gz`).
    public static let fileNames = (trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
                                   testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// - `nil` (or empty): Fashion-MNIST from `defaultDirectory`; if that folder does not exist, the spirals dataset
    ///   with a `notice` saying so. A folder that exists but is broken is an error.
    /// - `synthetic:spirals`: the built-in 3-class 2-D spirals.
    /// - anything else: a folder with the four MNIST-format IDX files; missing or broken is an error.
    /// `normalize`: map values to (x − mean)/std with the training split's statistics.
    /// `defaultDirectory`: where a nil spec looks (a parameter so tests can point it elsewhere).
    public static func load(spec: String?, normalize: Bool = false,
                            defaultDirectory: String = DataLoader.defaultDirectory) throws -> LoadedData {
        var result: LoadedData
        if let spec, !spec.isEmpty {
            if spec.hasPrefix("synthetic:") {
                let name = String(spec.dropFirst("synthetic:".count))
                guard name == "spirals" else {
                    throw DataError(.unknownSpec, "unknown synthetic dataset '\(name)': valid are \(syntheticNames.map { "synthetic:" + $0 }.joined(separator: ", "))")
                }
                result = LoadedData(dataset: Spirals.make(), source: spec)
            } else {
                result = LoadedData(dataset: try loadDirectory(spec), source: spec)
            }
        } else if !directoryExists(defaultDirectory) {
            let notice = "Fashion-MNIST not found in \(defaultDirectory): install it with 'apt-get install dataset-fashion-mnist' or pass --data DIR; training on the built-in synthetic spirals dataset instead"
            result = LoadedData(dataset: Spirals.make(), source: "synthetic:spirals", notice: notice)
        } else {
            result = LoadedData(dataset: try loadDirectory(defaultDirectory), source: defaultDirectory)
        }
        if normalize {
            let (mean, std) = result.dataset.trainStatistics()
            if std > 0 { result.dataset = result.dataset.normalized(mean: mean, std: std) }
        }
        return result
    }

    /// Loads the four MNIST-format files from `directory`: images scaled to [0, 1] (x/255), labels as Int32.
    public static func loadDirectory(_ directory: String) throws -> Dataset {
        if !directoryExists(directory) {
            if pathExists(directory) {
                throw DataError(.unreadable, "\(directory): not a folder — --data takes a folder holding the MNIST-format IDX files (train-images-idx3-ubyte[.gz] …)")
            }
            throw DataError(.missing, "\(directory): no such folder — pass --data a folder holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
        }
        let names = fileNames
        let paths = try [names.trainImages, names.trainLabels, names.testImages, names.testLabels].map {
            try findFile(directory: directory, base: $0)
        }
        let trainImages = try IDX.read(paths[0]), trainLabels = try IDX.read(paths[1])
        let testImages = try IDX.read(paths[2]), testLabels = try IDX.read(paths[3])
        for f in [trainImages, testImages] where f.dims.count != 3 {
            throw DataError(.mismatch, "\(f.path): holds \(IDX.describe(f.dims)), expected images N x rows x cols — is it the right file?")
        }
        for f in [trainLabels, testLabels] where f.dims.count != 1 {
            throw DataError(.mismatch, "\(f.path): holds \(IDX.describe(f.dims)), expected a list of labels — is it the right file?")
        }
        for (images, labels) in [(trainImages, trainLabels), (testImages, testLabels)] where images.dims[0] != labels.dims[0] {
            throw DataError(.mismatch, "\(labels.path): holds \(labels.dims[0]) labels but \(fileName(images.path)) holds \(images.dims[0]) images — the files do not belong together; \(DataError.redownload)")
        }
        guard trainImages.dims[1...] == testImages.dims[1...] else {
            throw DataError(.mismatch, "\(testImages.path): images are \(testImages.dims[1])x\(testImages.dims[2]) but the training images are \(trainImages.dims[1])x\(trainImages.dims[2]) — the files do not belong together")
        }
        guard trainImages.dims[0] > 0 && testImages.dims[0] > 0 && trainImages.dims[1] > 0 && trainImages.dims[2] > 0 else {
            throw DataError(.mismatch, "\(directory): a split holds no samples (train \(IDX.describe(trainImages.dims)), test \(IDX.describe(testImages.dims))) — \(DataError.redownload)")
        }
        let trainY = decodeLabels(trainLabels), testY = decodeLabels(testLabels)
        let classCount = Int(max(trainY.max() ?? 0, testY.max() ?? 0)) + 1
        guard classCount >= 2 else {
            throw DataError(.mismatch, "\(trainLabels.path): every label is 0, a classifier needs at least 2 classes — is it the right file?")
        }
        let name = directory.lowercased().contains("fashion") ? "Fashion-MNIST" : fileName(directory.hasSuffix("/") ? String(directory.dropLast()) : directory)
        return Dataset(name: name, sampleShape: [1, trainImages.dims[1], trainImages.dims[2]], classCount: classCount,
                       train: DataSplit(images: decodeImages(trainImages), labels: trainY),
                       test: DataSplit(images: decodeImages(testImages), labels: testY))
    }

    /// `<dir>/<base>` or `<dir>/<base>.gz`, whichever exists (raw first).
    static func findFile(directory: String, base: String) throws -> String {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        for candidate in ["\(dir)/\(base)", "\(dir)/\(base).gz"] where pathExists(candidate) { return candidate }
        throw DataError(.missing, "\(dir): \(base)[.gz] not found — the folder must hold the four MNIST-format IDX files (train/t10k images and labels); \(DataError.redownload)")
    }

    /// Bytes → Float32 in [0, 1] (x/255, as `torch.tensor(…)/255.0`).
    static func decodeImages(_ f: IDXFile) -> [Float] {
        let n = f.elementCount, offset = f.dataOffset
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            f.bytes.withUnsafeBufferPointer { src in
                let s = src.baseAddress! + offset, d = out.baseAddress!
                for i in 0..<n { d[i] = Float(s[i]) / 255 }
            }
            initialized = n
        }
    }

    static func decodeLabels(_ f: IDXFile) -> [Int32] {
        let n = f.elementCount, offset = f.dataOffset
        return [Int32](unsafeUninitializedCapacity: n) { out, initialized in
            f.bytes.withUnsafeBufferPointer { src in
                for i in 0..<n { out[i] = Int32(src[offset + i]) }
            }
            initialized = n
        }
    }

    static func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
