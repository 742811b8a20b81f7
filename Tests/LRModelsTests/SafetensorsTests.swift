import Foundation
import Testing
import LRModels
import LRTensor

/// The fixtures were written by the real safetensors library (Fixtures/safetensors/make_fixtures.py).
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/safetensors")

private func fixture(_ name: String) throws -> (file: Safetensors, bytes: [UInt8], expected: [String: Any]) {
    let url = fixtures.appendingPathComponent(name + ".safetensors")
    let bytes = [UInt8](try Data(contentsOf: url))
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent(name + ".json")))
    return (try Safetensors(bytes: bytes, source: name), bytes, json as! [String: Any])
}

private func expectedTensors(_ expected: [String: Any]) -> [String: (shape: [Int], floats: [Float]?, ints: [Int64]?)] {
    var out: [String: (shape: [Int], floats: [Float]?, ints: [Int64]?)] = [:]
    for (name, value) in expected["tensors"] as! [String: [String: Any]] {
        let shape = (value["shape"] as! [Any]).map { $0 as! Int }
        let floats = (value["floats"] as? [Any])?.map { Float(($0 as! NSNumber).doubleValue) }
        let ints = (value["ints"] as? [Any])?.map { Int64(($0 as! NSNumber).int64Value) }
        out[name] = (shape, floats, ints)
    }
    return out
}

/// A model the fixture twins fit: `mlp 6-5-3`, or a width-2 convnet on 1-channel images with 3 classes.
private func model(_ name: String) throws -> Network {
    name.hasPrefix("mlp")
        ? try ModelFactory.make(name: "mlp", sampleShape: [6], classCount: 3, seed: 1, hidden: [5])
        : try ModelFactory.make(name: "convnet", sampleShape: [1, 6, 6], classCount: 3, seed: 1, width: 2)
}

/// Rewrites the header of a safetensors file (keeping the data), for the bad-input tests.
private func withHeader(_ bytes: [UInt8], _ edit: (String) -> String) -> [UInt8] {
    var n = 0
    for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
    let header = edit(String(decoding: bytes[8..<(8 + n)], as: UTF8.self))
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out += $0 }
    return out + Array(header.utf8) + bytes[(8 + n)...]
}

private func problem(_ bytes: [UInt8], loadingInto network: Network? = nil) -> String {
    do {
        let file = try Safetensors(bytes: bytes, source: "bad.safetensors")
        try network?.load(file)
        return "no error"
    } catch { return "\(error)" }
}

@Suite("Safetensors")
struct SafetensorsTests {
    @Test func readsEveryFloatDtypeTheLibraryWrites() throws {
        let (file, _, expected) = try fixture("dtypes")
        #expect(file.metadata == ["format": "pt", "written_by": "make_fixtures.py"])
        for (name, want) in expectedTensors(expected) {
            let entry = try #require(file[name], "missing \(name)")
            #expect(entry.shape == want.shape, "\(name)")
            if let floats = want.floats {
                #expect(try file.floats(entry).map(\.bitPattern) == floats.map(\.bitPattern), "\(name) (\(entry.dtype))")
            } else {
                #expect(try file.integers(entry) == want.ints, "\(name)")
            }
        }
        #expect(Set(file.names) == ["f32", "f16", "bf16", "count", "empty"])
    }

    @Test(arguments: ["mlp-6-5-3", "mlp-6-5-3-bf16", "convnet-w2"])
    func loadsATwinsStateDictIntoTheModel(_ name: String) throws {
        let (file, _, expected) = try fixture(name)
        let network = try model(name)
        try network.load(file)
        let want = expectedTensors(expected)
        var seen = 0
        for p in network.parameters {
            #expect(p.value.storage.map(\.bitPattern) == want[p.name]?.floats?.map(\.bitPattern), "\(p.name)")
            seen += 1
        }
        for b in network.buffers {
            if let ints = want[b.name]?.ints {
                #expect(b.tensor.storage == ints.map(Float.init), "\(b.name)")
            } else {
                #expect(b.tensor.storage.map(\.bitPattern) == want[b.name]?.floats?.map(\.bitPattern), "\(b.name)")
            }
            seen += 1
        }
        #expect(seen == want.count, "every tensor of the file is one of the model's")
    }

    /// What lrtop writes is byte for byte what the library writes for the same state_dict: header layout,
    /// padding to 8 bytes, tensor order, data.
    @Test(arguments: ["mlp-6-5-3", "convnet-w2"])
    func writesTheSameBytesAsTheLibrary(_ name: String) throws {
        let (file, bytes, _) = try fixture(name)
        let network = try model(name)
        try network.load(file)
        #expect(network.safetensorsBytes() == bytes)
    }

    @Test func roundTripsEveryBit() throws {
        let source = try ModelFactory.make(name: "convnet", sampleShape: [1, 6, 6], classCount: 3, seed: 9, width: 2)
        _ = source.forward(Tensor(shape: [4, 1, 6, 6], storage: (0..<144).map { sinf(Float($0)) }), training: true)
        let bytes = source.safetensorsBytes(metadata: ["note": "a \"quoted\" value\n"])
        let file = try Safetensors(bytes: bytes, source: "memory")
        #expect(file.metadata == ["note": "a \"quoted\" value\n", "format": "pt"])
        #expect((try #require(file.entries.first)).range.lowerBound % 8 == 0, "data starts 8-aligned")
        let copy = try ModelFactory.make(name: "convnet", sampleShape: [1, 6, 6], classCount: 3, seed: 10, width: 2)
        try copy.load(file)
        for (a, b) in zip(source.parameters, copy.parameters) { #expect(a.value.storage.map(\.bitPattern) == b.value.storage.map(\.bitPattern)) }
        for (a, b) in zip(source.buffers, copy.buffers) { #expect(a.tensor.storage.map(\.bitPattern) == b.tensor.storage.map(\.bitPattern)) }
        #expect(copy.buffers.first { $0.name == "stem.bn.num_batches_tracked" }?.tensor.storage == [1])
    }

    @Test func badFilesNameTheTensorAndTheProblem() throws {
        let (_, bytes, _) = try fixture("mlp-6-5-3")
        let network = try model("mlp")
        let before = network.parameters.map { $0.value.storage }

        #expect(problem(Array(bytes.prefix(5))).contains("truncated"))
        #expect(problem(Array(bytes.prefix(40))).contains("truncated: the header claims"))
        let cut = problem(Array(bytes.dropLast(3)))
        #expect(cut.contains("tensor 'head.weight'") && cut.contains("past the end of the data"), "\(cut)")
        let lying = problem(withHeader(bytes) { $0.replacingOccurrences(of: "\"data_offsets\":[0,20]", with: "\"data_offsets\":[4,24]") })
        #expect(lying.contains("tensor 'fc1.bias'") && lying.contains("lies about offsets"), "\(lying)")
        let wrongSize = problem(withHeader(bytes) { $0.replacingOccurrences(of: "\"shape\":[5]", with: "\"shape\":[6]") })
        #expect(wrongSize.contains("tensor 'fc1.bias'") && wrongSize.contains("needs 24"), "\(wrongSize)")
        let dtype = problem(withHeader(bytes) { $0.replacingOccurrences(of: "{\"dtype\":\"F32\",\"shape\":[3]", with: "{\"dtype\":\"F33\",\"shape\":[3]") })
        #expect(dtype.contains("tensor 'head.bias'") && dtype.contains("unknown dtype 'F33'"), "\(dtype)")
        let ints = problem(withHeader(bytes) { $0.replacingOccurrences(of: "{\"dtype\":\"F32\",\"shape\":[3]", with: "{\"dtype\":\"I32\",\"shape\":[3]") }, loadingInto: network)
        #expect(ints.contains("tensor 'head.bias' is I32") && ints.contains("F32, F16 or BF16"), "\(ints)")
        #expect(problem(withHeader(bytes) { _ in "[1, 2]" }).contains("not a JSON object"))

        // Well-formed files that do not fit the model.
        let missing = problem(Safetensors.encode([]), loadingInto: network)
        #expect(missing.contains("no tensor 'fc1.weight'"), "\(missing)")
        let other = try ModelFactory.make(name: "mlp", sampleShape: [6], classCount: 3, seed: 1, hidden: [4])
        let misShaped = problem(other.safetensorsBytes(), loadingInto: network)
        #expect(misShaped.contains("tensor 'fc1.weight' has shape [4, 6]") && misShaped.contains("needs [5, 6]"), "\(misShaped)")
        let deeper = try ModelFactory.make(name: "mlp", sampleShape: [6], classCount: 3, seed: 1, hidden: [5, 5])
        var tensors = deeper.stateDictTensors()
        tensors.removeAll { $0.name.hasPrefix("head") }
        tensors += network.stateDictTensors().filter { $0.name.hasPrefix("head") }
        let extra = problem(Safetensors.encode(tensors), loadingInto: network)
        #expect(extra.contains("tensor 'fc2.bias' is not in model mlp 6-5-3"), "\(extra)")
        for message in [cut, lying, wrongSize, dtype, ints, missing, misShaped, extra] { #expect(!message.contains("\n")) }
        #expect(network.parameters.map { $0.value.storage } == before, "a failed load changes nothing")
    }
}
