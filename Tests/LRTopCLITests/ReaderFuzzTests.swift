import Foundation
import Testing

/// Issue #20, items 11 and 15: crafted `.ckpt` and safetensors files, including ones whose checksum is valid but
/// whose insides lie (lengths and counts huge, negative or overflowing, truncations, bad names, out-of-range state,
/// NaN weights), through the CLI as a user would give them: `--resume`, `--init`, `export-weights`. Each gets one
/// clear error line and exit status 1: no trap, and a child that stays small (no allocation the file does not back).
@Suite(.serialized) struct ReaderFuzzTests {
    static let spirals = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--batch-size", "64"]
    /// Peak memory a refused file may cost: the binary on a tiny run is about 40 MiB; an allocation a crafted
    /// length asked for would be gigabytes.
    static let rssLimitKiB = 200 * 1024

    /// One valid checkpoint and one valid safetensors file of a small run, made once.
    static let base: (dir: TempDir, checkpoint: [UInt8], safetensors: [UInt8]) = {
        let dir = try! TempDir("lrtop-fuzz")
        _ = try! lrtop(spirals + ["--max-steps", "12", "--checkpoint-every", "6", "--run-dir", "r"], in: dir.url)
        _ = try! lrtop(["export-weights", "r/checkpoints/step-00000006.ckpt", "w.safetensors"], in: dir.url)
        let ckpt = (try? Data(contentsOf: dir.url.appendingPathComponent("r/checkpoints/step-00000006.ckpt"))) ?? Data()
        let st = (try? Data(contentsOf: dir.url.appendingPathComponent("w.safetensors"))) ?? Data()
        return (dir, [UInt8](ckpt), [UInt8](st))
    }()

    /// Checkpoint mutations: (what, bytes, whether `export-weights` must refuse it too; metadata it does not read
    /// may leave it a valid export).
    static func checkpointCases() throws -> [(String, [UInt8], Bool)] {
        let original = CheckpointBytes(base.checkpoint)
        var cases: [(String, [UInt8], Bool)] = []
        func add(_ what: String, exportRefuses: Bool = true, _ edit: (inout CheckpointBytes) throws -> Void) rethrows {
            var c = original
            try edit(&c)
            cases.append((what, c.encoded(), exportRefuses))
        }
        cases.append(("metadata length 2^63", original.encoded(metadataLength: 1 << 63), true))
        cases.append(("metadata length 2^64-1", original.encoded(metadataLength: .max), true))
        let t = original.firstTensor
        try add("tensor count 2^64-1") { $0.table.put(UInt64.max, at: 0) }
        try add("tensor count 2^62") { $0.table.put(UInt64(1) << 62, at: 0) }
        try add("one tensor more than there are") { $0.table.put(CheckpointBytes.u64($0.table, at: 0) + 1, at: 0) }
        try add("name length 2^32-1") { $0.table.put(UInt32.max, at: t.nameLength) }
        try add("name length 0") { $0.table.put(UInt32(0), at: t.nameLength) }
        try add("name not UTF-8") { $0.table[t.nameLength + 4] = 0xFF }
        try add("value count 2^64-1") { $0.table.put(UInt64.max, at: t.valueCount) }
        try add("value count 2^62 (overflows as bytes)") { $0.table.put(UInt64(1) << 62, at: t.valueCount) }
        try add("value count 2^61+1") { $0.table.put((UInt64(1) << 61) + 1, at: t.valueCount) }
        try add("truncated tensor table") { $0.table.removeLast($0.table.count / 2) }
        try add("bytes after the last tensor") { $0.table += [0, 0, 0, 0] }
        try add("a NaN weight") { $0.table.put(Float.nan.bitPattern, at: t.values) }
        try add("metadata not JSON") { $0.metadata = Array("{\"step\": ".utf8) }
        try add("metadata nested 100,000 deep") { $0.metadata = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000) }
        try add("hidden size 10^9 in the metadata") { try $0.editMetadata { m in
            var config = m["config"] as! [String: Any]; config["hidden"] = [1_000_000_000]; m["config"] = config } }
        let resumeOnly: [(String, (inout [String: Any]) -> Void)] = [
            ("step -1", { $0["step"] = -1 }),
            ("step Int.min", { $0["step"] = Int.min }),
            ("checkpoint_keep Int.max", { m in var c = m["config"] as! [String: Any]; c["checkpointKeep"] = Int.max; m["config"] = c }),
            ("guard seen Int.max", { m in var g = m["guardState"] as! [String: Any]; g["seen"] = Int.max; m["guardState"] = g }),
            ("warmup done Int.max", { m in var l = m["lrControl"] as! [String: Any]; l["warmupDone"] = Int.max; l["warmupTotal"] = Int.max; m["lrControl"] = l }),
            ("held list empty", { m in var l = m["lrControl"] as! [String: Any]; l["held"] = [Bool](); m["lrControl"] = l }),
            ("beta1 -1", { m in var h = m["groupHypers"] as! [[String: Any]]; h[0]["beta1"] = -1.0; m["groupHypers"] = h }),
            ("LR list longer than the groups", { m in m["groupLRs"] = [1e-3, 1e-3] }),
        ]
        for (what, edit) in resumeOnly { try add(what, exportRefuses: false) { try $0.editMetadata(edit) } }
        return cases
    }

    /// Safetensors mutations: the 8-byte header length, the JSON header's shapes, offsets and dtypes, truncations.
    static func safetensorsCases() throws -> [(String, [UInt8])] {
        let bytes = base.safetensors
        let n = Int(CheckpointBytes.u64(bytes, at: 0))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        let data = Array(bytes[(8 + n)...])
        func file(_ h: [String: Any], data d: [UInt8]? = nil, length: UInt64? = nil) throws -> [UInt8] {
            var json = [UInt8](try JSONSerialization.data(withJSONObject: h))
            while (8 + json.count) % 8 != 0 { json.append(32) }
            return CheckpointBytes.le(length ?? UInt64(json.count)) + json + (d ?? data)
        }
        func with(_ tensor: String, _ key: String, _ value: Any) throws -> [UInt8] {
            var h = header
            var entry = try #require(h[tensor] as? [String: Any])
            entry[key] = value
            h[tensor] = entry
            return try file(h)
        }
        var cases: [(String, [UInt8])] = [
            ("header length 2^63", try file(header, length: 1 << 63)),
            ("header length 2^64-1", try file(header, length: .max)),
            ("header length past the end", try file(header, length: 100_000_000)),
            ("cut in the header", Array(bytes.prefix(20))),
            ("cut in the data", Array(bytes.dropLast(5))),
            ("offsets [0, 2^62]", try with("head.bias", "data_offsets", [0, 1 << 62])),
            ("offsets backwards", try with("head.bias", "data_offsets", [8, 0])),
            ("shape overflowing", try with("head.bias", "shape", [1 << 40, 1 << 40])),
            ("negative shape", try with("head.bias", "shape", [-3])),
            ("dtype F33", try with("head.bias", "dtype", "F33")),
            ("header nested 100,000 deep", CheckpointBytes.le(UInt64(200_000)) + Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)),
        ]
        // A shape of [10^9, 0] holds no bytes, so its offsets are consistent; a model sized from it would not be.
        var bomb = header
        var data2: [UInt8] = []
        let names = header.keys.filter { $0 != "__metadata__" }.sorted()
        for name in names {
            var entry = try #require(bomb[name] as? [String: Any])
            let shape = name == "fc1.weight" ? [1_000_000_000, 0] : try #require(entry["shape"] as? [Int])
            let size = shape.reduce(1, *) * 4
            entry["shape"] = shape
            entry["data_offsets"] = [data2.count, data2.count + size]
            data2 += [UInt8](repeating: 0, count: size)
            bomb[name] = entry
        }
        cases.append(("fc1.weight shaped [10^9, 0]", try file(bomb, data: data2)))
        // A NaN in the first tensor's data.
        var nan = data
        nan.put(Float.nan.bitPattern, at: 0)
        cases.append(("a NaN weight", try file(header, data: nan)))
        return cases
    }

    /// Runs `body` for 0..<count on the cores (each runs short lrtop processes), keeping the results in order.
    static func inParallel<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
        let results = Locked([T?](repeating: nil, count: count))
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let r = body(i)
            results.update { $0[i] = r }
        }
        return results.value.map { $0! }
    }

    static func expectRefused(_ out: MeasuredOutput, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = out.stderr.split(separator: "\n")
        #expect(out.signal == 0 && out.status == 1, "\(what): exit \(out.status), signal \(out.signal): \(out.stderr.prefix(300))",
                sourceLocation: sourceLocation)
        #expect(lines.count == 1 && lines.first?.hasPrefix("lrtop: error: ") == true, "\(what): \(out.stderr.prefix(300))",
                sourceLocation: sourceLocation)
        #expect(gnuTime == nil || (1..<rssLimitKiB).contains(out.maxRSSKiB), "\(what): peak memory \(out.maxRSSKiB) KiB",
                sourceLocation: sourceLocation)
    }

    @Test func craftedCheckpointsAreOneErrorLineThroughResumeAndExport() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let cases = try Self.checkpointCases()
        for (i, (_, bytes, _)) in cases.enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: dir.path("c\(i).ckpt"))) }
        let results = Self.inParallel(cases.count) { i in
            (try? lrtopMeasured(["train", "--headless", "--resume", dir.path("c\(i).ckpt"), "--max-steps", "12", "--run-dir", "r\(i)"], in: dir.url),
             try? lrtopMeasured(["export-weights", dir.path("c\(i).ckpt"), "o\(i).safetensors"], in: dir.url))
        }
        for (i, (what, _, exportRefuses)) in cases.enumerated() {
            guard let resume = results[i].0, let export = results[i].1 else { Issue.record("\(what): could not run lrtop"); continue }
            Self.expectRefused(resume, "--resume with \(what)")
            if exportRefuses { Self.expectRefused(export, "export-weights of \(what)") } else {
                #expect(export.signal == 0 && [0, 1].contains(export.status) && export.maxRSSKiB < Self.rssLimitKiB,
                        "export-weights of \(what): exit \(export.status), \(export.maxRSSKiB) KiB")
            }
        }
    }

    @Test func craftedSafetensorsAreOneErrorLineThroughInitAndExport() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let cases = try Self.safetensorsCases()
        for (i, (_, bytes)) in cases.enumerated() { try Data(bytes).write(to: URL(fileURLWithPath: dir.path("s\(i).safetensors"))) }
        let results = Self.inParallel(cases.count) { i in
            (try? lrtopMeasured(Self.spirals + ["--max-steps", "3", "--init", dir.path("s\(i).safetensors"), "--run-dir", "r\(i)"], in: dir.url),
             try? lrtopMeasured(["export-weights", dir.path("s\(i).safetensors"), "o\(i).safetensors"], in: dir.url))
        }
        for (i, (what, _)) in cases.enumerated() {
            guard let initRun = results[i].0, let export = results[i].1 else { Issue.record("\(what): could not run lrtop"); continue }
            Self.expectRefused(initRun, "--init with \(what)")
            Self.expectRefused(export, "export-weights of \(what)")
        }
    }

    /// Item 15: the MLP's ReLU hides NaN weights and such a run "completes" at chance: refused as --init refuses.
    @Test func resumingACheckpointWithNaNWeightsIsRefusedNamingTheTensor() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var c = CheckpointBytes(Self.base.checkpoint)
        c.table.put(Float.nan.bitPattern, at: c.firstTensor.values + 4 * 3)
        try Data(c.encoded()).write(to: dir.url.appendingPathComponent("nan.ckpt"))
        let out = try lrtop(["train", "--headless", "--resume", "nan.ckpt", "--run-dir", "r"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.hasPrefix("lrtop: error: \(dir.path("nan.ckpt")): tensor '"), "\(out.stderr)")
        #expect(out.stderr.hasSuffix("' holds nan at index 3: the checkpoint's weights are not finite (saved from a diverged run?); use an earlier checkpoint\n"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("r/run.jsonl")))
    }

    /// Item 19: a checkpoint that cannot be read says why (not "no such file"), naming its owner and mode.
    @Test(.enabled(if: runningAsRoot, Comment(rawValue: needsRoot)))
    func anUnreadableCheckpointSaysPermissionDeniedNotNoSuchFile() throws {
        let other = try #require(otherUser, "useradd failed")
        let dir = try TempDir()
        defer { dir.cleanup() }
        try Data(Self.base.checkpoint).write(to: dir.url.appendingPathComponent("private.ckpt"))
        chmod(dir.path("private.ckpt"), 0o600)
        chmod(dir.url.path, 0o755)
        // The other user runs a copy beside the checkpoint: the build folder may be out of its reach (CI's clone
        // sits in a private 0700 folder).
        let binary = try copyOfBinary(to: dir.url.appendingPathComponent("lrtop"))
        let out = try runCleanly(["/usr/sbin/runuser", "-u", other.name, "--", "/bin/sh", "-c",
                                  "'\(binary.path)' export-weights '\(dir.path("private.ckpt"))' /dev/null/x 2>&1; echo \"exit $?\""])
        #expect(out.contains("lrtop: error: \(dir.path("private.ckpt")): permission denied: you cannot read this checkpoint (owner root (uid 0), mode 0600)"),
                "\(out)")
        #expect(out.hasSuffix("exit 1\n"))
    }

    /// A gzip bomb named as a dataset file: a header declaring 10 images of 28x28 (7,840 bytes), then 1 GiB of
    /// zeros in about a megabyte of gzip members. Refused in one line naming the file, the child staying small:
    /// decompressing stops one byte past what the header declares.
    @Test func gzipBombAsADatasetFileIsOneErrorLineAndStaysSmall() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let data = dir.path("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]
        let megabyteOfZeros = try Self.gzip(Data(count: 1 << 20), in: dir)
        var bomb = try Self.gzip(Data(header), in: dir)
        for _ in 0..<1024 { bomb += megabyteOfZeros }
        #expect(bomb.count < 4 << 20)
        let images = data + "/train-images-idx3-ubyte.gz"
        try bomb.write(to: URL(fileURLWithPath: images))
        for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try Data([0, 0, 8, 1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: data + "/" + name))
        }
        let out = try lrtopMeasured(["train", "--headless", "--data", data, "--max-steps", "1", "--run-dir", "r"], in: dir.url)
        Self.expectRefused(out, "a gzip bomb as the training images")
        #expect(out.stderr.contains("\(images): the gzip stream holds more than the 10x28x28 images (7840 bytes) its IDX header declares"),
                "\(out.stderr)")
    }

    /// `bytes` as one gzip member, by the system's gzip (Foundation has no gzip on Linux).
    static func gzip(_ bytes: Data, in dir: TempDir) throws -> Data {
        let input = dir.path("gzip-input-\(UUID().uuidString.prefix(8))")
        try bytes.write(to: URL(fileURLWithPath: input))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-c", "-n", input]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return out
    }
}

/// A value behind a lock, for results gathered from several threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    func update(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
}
