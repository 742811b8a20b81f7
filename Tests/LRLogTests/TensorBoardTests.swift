import Foundation
import LRLog
import Testing

/// manifest.json: file (relative to the fixtures) -> what it must contain.
private func manifest() throws -> [String: [String: Any]] {
    let data = try Data(contentsOf: fixturesDir.appendingPathComponent("manifest.json"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
}

/// Byte offsets of each TFRecord in a file: (start, data length).
private func records(_ bytes: [UInt8]) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    var i = 0
    while i + 12 <= bytes.count {
        let n = bytes[i..<i + 8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        out.append((i, n))
        i += 16 + n
    }
    return out
}

@Suite struct TensorBoardTests {
    @Test func crc32cKnownValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = CRC32C.checksum(long)
        let split = long.withUnsafeBytes { b in
            CRC32C.checksum(b.baseAddress! + 13, 987, continuing: CRC32C.checksum(b.baseAddress!, 13))
        }
        #expect(whole == split)
    }

    @Test func everyManifestEntryReads() throws {
        for (file, entry) in try manifest() {
            let url = fixturesDir.appendingPathComponent(file)
            if let tags = entry["tags"] as? [String: Int] {
                let content = try TensorBoardReader.read(at: url)
                #expect(content.warnings.isEmpty, "\(file): \(content.warnings)")
                #expect(content.fileVersion?.hasPrefix("brain.Event:") == true, "\(file)")
                #expect(Set(content.scalars.map(\.tag)) == Set(tags.keys), "\(file)")
                for (tag, count) in tags {
                    #expect(content.scalars.first { $0.tag == tag }?.count == count, "\(file) \(tag)")
                }
                for (tag, pairs) in entry["check"] as? [String: [[Double]]] ?? [:] {
                    let series = try #require(content.scalars.first { $0.tag == tag }, "\(file) \(tag)")
                    for pair in pairs {
                        let value = try #require(series.value(atStep: Int(pair[0])), "\(file) \(tag) step \(pair[0])")
                        #expect(sameFloat32(value, pair[1]), "\(file) \(tag) step \(pair[0]): \(value) vs \(pair[1])")
                    }
                }
                // The same through the loader, as a run.
                let run = try RunLoader.loadFile(url, name: "x")
                #expect(run.format == .tensorBoard && run.steps.count > 0 && run.mapping.loss != nil && run.mapping.lrs.count == 1)
            } else if let header = entry["header"] as? String {
                let table = try CSVReader.read(at: url)
                #expect(table.header.joined(separator: ",") == header, "\(file)")
                #expect(table.rowCount == entry["rows"] as? Int, "\(file)")
                #expect(table.warnings.isEmpty, "\(file): \(table.warnings)")
            } else {
                Issue.record("\(file): manifest entry with neither tags nor header")
            }
        }
    }

    @Test func badChecksumsAreReportedAndSkipped() throws {
        let source = fixturesDir.appendingPathComponent("tensorboard/torch_simple/events.out.tfevents.1795574350.vm.5499.0")
        let expected = try TensorBoardReader.read(at: source)
        let total = expected.scalars.reduce(0) { $0 + $1.count }
        var bytes = [UInt8](try Data(contentsOf: source))
        let recs = records(bytes)
        bytes[recs[100].0 + 12 + 5] ^= 0x40  // inside record 100's data
        bytes[recs[200].0 + 2] ^= 0x01       // record 200's length
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("events.out.tfevents.1.broken")
        try Data(bytes).write(to: url)
        let content = try TensorBoardReader.read(at: url)
        #expect(content.scalars.reduce(0) { $0 + $1.count } == total - 2)
        #expect(content.warnings.count == 2)
        #expect(content.warnings[0] == "\(url.path): record 100 at byte \(recs[100].0): data checksum mismatch, record skipped")
        #expect(content.warnings[1].hasPrefix("\(url.path): record 200 at byte \(recs[200].0): length checksum mismatch"))
        // The other values are intact.
        let loss = try #require(content.scalars.first { $0.tag == "train/loss" })
        #expect(loss.value(atStep: 999) == expected.scalars.first { $0.tag == "train/loss" }?.value(atStep: 999))
    }

    @Test func truncatedTailIsReported() throws {
        let source = fixturesDir.appendingPathComponent("tensorboard/torch_tensor/events.out.tfevents.1795574350.vm.5499.1")
        let bytes = [UInt8](try Data(contentsOf: source))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("events.out.tfevents.1.cut")
        try Data(bytes.dropLast(7)).write(to: url)
        let content = try TensorBoardReader.read(at: url)
        #expect(content.scalars.reduce(0) { $0 + $1.count } == 2009)
        #expect(content.warnings.count == 1)
        #expect(content.warnings.first?.contains("truncated record") == true)
    }

    @Test func notAnEventFileIsAnError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("events.out.tfevents.1.text")
        try write(String(repeating: "hello, this is not TFRecord\n", count: 10), to: url)
        #expect(throws: LogError.self) { try TensorBoardReader.read(at: url) }
    }

    @Test func writerRoundTrip() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tb/events.out.tfevents.123.host")
        let writer = try TensorBoardWriter(url: url, wallTime: 1_700_000_000)
        for i in 0..<300 {
            try writer.addScalars([("train/loss", Float(1) / Float(i + 1)), ("train/lr", 1e-3 * Float(i))], step: i,
                                  wallTime: 1_700_000_000 + Double(i))
        }
        try writer.addScalar(tag: "val/acc", value: .nan, step: 1 << 40, wallTime: 1_700_001_000)
        try writer.close()
        let content = try TensorBoardReader.read(at: url)
        #expect(content.warnings.isEmpty && content.fileVersion == "brain.Event:2")
        #expect(content.startWallTime == 1_700_000_000)
        #expect(content.scalars.map(\.tag) == ["train/loss", "train/lr", "val/acc"])
        #expect(content.scalars[0].steps == Array(0..<300))
        #expect(content.scalars[0].values == (0..<300).map { Double(Float(1) / Float($0 + 1)) })
        #expect(content.scalars[1].values == (0..<300).map { Double(1e-3 * Float($0)) })
        #expect(content.scalars[2].steps == [1 << 40] && content.scalars[2].values[0].isNaN)
        #expect(content.scalars[0].wallTimes[299] == 1_700_000_299)
    }
}
