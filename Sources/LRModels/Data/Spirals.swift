#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LRTensor

/// The built-in synthetic dataset: interleaved 2-D spirals, one arm per class (the CS231n toy problem).
/// Class k's points lie at radius r ∈ [0, 1) and angle 4k + 4r radians plus Gaussian noise. Deterministic from the
/// seed; train and test are drawn from independent streams. Not linearly separable; an MLP reaches > 95%.
public enum Spirals {
    public static func make(trainCount: Int = 6000, testCount: Int = 1500, classes: Int = 3, noise: Float = 0.2,
                            seed: UInt64 = 0x5EED_5EED) -> Dataset {
        precondition(classes >= 2, "spirals need at least 2 classes")
        return Dataset(name: "spirals", sampleShape: [2], classCount: classes,
                       train: split(count: trainCount, classes: classes, noise: noise, seed: seed),
                       test: split(count: testCount, classes: classes, noise: noise, seed: seed &+ 0x7E57))
    }

    static func split(count: Int, classes: Int, noise: Float, seed: UInt64) -> DataSplit {
        var rng = Xoshiro256(seed: seed)
        var images = [Float](repeating: 0, count: 2 * count)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let k = i % classes
            let r = rng.nextFloat()
            let theta = Float(k) * 4 + 4 * r + noise * rng.normal()
            images[2 * i] = r * sinf(theta)
            images[2 * i + 1] = r * cosf(theta)
            labels[i] = Int32(k)
        }
        return DataSplit(images: images, labels: labels)
    }
}
