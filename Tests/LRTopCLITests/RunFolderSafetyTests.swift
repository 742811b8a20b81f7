import Foundation
import Testing

/// Issue #20, security 1 (the Swift binary): a run folder or `checkpoints/` another user owns or can write is
/// refused naming its owner and mode, and no file lrtop writes is ever opened through a planted link.
@Suite(.serialized) struct RunFolderSafetyTests {
    static let spirals = ["train", "--headless", "--data", "synthetic:spirals", "--hidden", "8", "--batch-size", "64",
                          "--max-steps", "5"]

    // MARK: planted links, as the same user

    @Test func aDanglingLogLinkIsRefusedAndCreatesNothingWhereItPoints() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("run"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("run/run.jsonl"), withDestinationPath: dir.path("planted"))
        let out = try lrtop(Self.spirals + ["--run-dir", "run"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr == "lrtop: error: the run log \(dir.path("run/run.jsonl")) is a symbolic link (to \(dir.path("planted"))): "
                + "lrtop never writes through a link; remove it or choose another path\n")
        #expect(!FileManager.default.fileExists(atPath: dir.path("planted")))
    }

    @Test func forceNeverTruncatesAFileThroughALink() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try "precious\n".write(toFile: dir.path("precious.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.path("run/checkpoints"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("run/run.jsonl"), withDestinationPath: dir.path("precious.txt"))
        try Data(repeating: 1, count: 64).write(to: dir.url.appendingPathComponent("run/checkpoints/step-00000001.ckpt"))
        let out = try lrtop(Self.spirals + ["--run-dir", "run", "--force"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.contains("is a symbolic link") && out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(try String(contentsOfFile: dir.path("precious.txt"), encoding: .utf8) == "precious\n")
        // Refused before --force removed anything.
        #expect(FileManager.default.fileExists(atPath: dir.path("run/checkpoints/step-00000001.ckpt")))
    }

    @Test func aCheckpointsLinkToAFolderOthersCanWriteIsRefused() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("elsewhere"), withIntermediateDirectories: true)
        chmod(dir.path("elsewhere"), 0o777)
        try FileManager.default.createDirectory(atPath: dir.path("run"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("run/checkpoints"), withDestinationPath: dir.path("elsewhere"))
        let out = try lrtop(Self.spirals + ["--run-dir", "run"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.contains("the checkpoints folder \(dir.path("run/checkpoints")) can be written by every user (mode 0777"),
                "\(out.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("elsewhere")).isEmpty)
    }

    @Test func aRunFolderOthersCanWriteIsRefusedNamingItsMode() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("shared"), withIntermediateDirectories: true)
        chmod(dir.path("shared"), 0o1777)
        let out = try lrtop(Self.spirals + ["--run-dir", "shared"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.hasPrefix("lrtop: error: the run folder \(dir.path("shared")) can be written by every user (mode 01777, owner "))
        #expect(out.stderr.contains("run 'chmod go-w \(dir.path("shared"))' or choose another --run-dir"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("shared")).isEmpty)
        // A sweep's folder is held to the same rule.
        let sweep = try lrtop(["sweep", "--headless", "--data", "synthetic:spirals", "--max-steps", "20", "--sweep-dir", "shared"], in: dir.url)
        #expect(sweep.status == 1 && sweep.stderr.contains("the sweep folder \(dir.path("shared")) can be written by every user"))
    }

    @Test func outputsReplaceAPlantedLinkInsteadOfWritingThroughIt() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try lrtop(Self.spirals + ["--run-dir", "r"], in: dir.url).status == 0)
        for (name, args) in [("w.safetensors", ["export-weights", "r", "w.safetensors"]),
                             ("o.csv", ["export", "r/run.jsonl", "--to", "csv", "o.csv"])] {
            try "precious\n".write(toFile: dir.path("precious-\(name)"), atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: dir.path(name), withDestinationPath: dir.path("precious-\(name)"))
            let out = try lrtop(args, in: dir.url)
            #expect(try String(contentsOfFile: dir.path("precious-\(name)"), encoding: .utf8) == "precious\n", "\(name)")
            if out.status == 0 {
                // Written whole and renamed over the link: the link is gone, a file of ours is there.
                let kind = try FileManager.default.attributesOfItem(atPath: dir.path(name))[.type] as? FileAttributeType
                #expect(kind == .typeRegular, "\(name)")
            } else {
                #expect(out.stderr.contains("is a symbolic link"), "\(name): \(out.stderr)")
            }
        }
    }

    // MARK: another user

    @Test(.enabled(if: runningAsRoot, Comment(rawValue: needsRoot)))
    func anotherUsersRunFolderOrCheckpointsAreRefusedNamingTheOwner() throws {
        let other = try #require(otherUser, "useradd failed")
        let dir = try TempDir()
        defer { dir.cleanup() }
        // A run folder another user made in a shared place, with a link of theirs where the log goes.
        try FileManager.default.createDirectory(atPath: dir.path("theirs"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("theirs/checkpoints"), withDestinationPath: dir.path("chosen"))
        lchown(dir.path("theirs/checkpoints"), other.uid, other.gid)
        chown(dir.path("theirs"), other.uid, other.gid)
        let out = try lrtop(Self.spirals + ["--run-dir", "theirs"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.hasPrefix("lrtop: error: the run folder \(dir.path("theirs")) is owned by \(other.name) (uid \(other.uid)), not by you"),
                "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("theirs/run.jsonl")))

        // Our folder, but `checkpoints/` is theirs.
        try FileManager.default.createDirectory(atPath: dir.path("ours/checkpoints"), withIntermediateDirectories: true)
        chown(dir.path("ours/checkpoints"), other.uid, other.gid)
        let cp = try lrtop(Self.spirals + ["--run-dir", "ours"], in: dir.url)
        #expect(cp.status == 1)
        #expect(cp.stderr.contains("the checkpoints folder \(dir.path("ours/checkpoints")) is owned by \(other.name)"), "\(cp.stderr)")

        // Our folder holding a link another user planted (as a group member could) where `checkpoints/` goes.
        try FileManager.default.createDirectory(atPath: dir.path("chosen"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("ours2"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("ours2/checkpoints"), withDestinationPath: dir.path("chosen"))
        lchown(dir.path("ours2/checkpoints"), other.uid, other.gid)
        let link = try lrtop(Self.spirals + ["--run-dir", "ours2"], in: dir.url)
        #expect(link.status == 1)
        #expect(link.stderr.contains("is a symbolic link owned by \(other.name)"), "\(link.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("chosen")).isEmpty)
    }

    @Test(.enabled(if: runningAsRoot, Comment(rawValue: needsRoot)))
    func aLogFileAnotherUserPlantedIsNotWrittenInto() throws {
        let other = try #require(otherUser, "useradd failed")
        let dir = try TempDir()
        defer { dir.cleanup() }
        // A sticky shared folder like /tmp: the log may live there, but not in a file someone else created.
        try FileManager.default.createDirectory(atPath: dir.path("tmp"), withIntermediateDirectories: true)
        chmod(dir.path("tmp"), 0o1777)
        try "theirs\n".write(toFile: dir.path("tmp/run.jsonl"), atomically: true, encoding: .utf8)
        chown(dir.path("tmp/run.jsonl"), other.uid, other.gid)
        chmod(dir.path("tmp/run.jsonl"), 0o666)
        let out = try lrtop(Self.spirals + ["--run-dir", "r", "--log", dir.path("tmp/run.jsonl"), "--force"], in: dir.url)
        #expect(out.status == 1)
        #expect(out.stderr.contains("is owned by \(other.name) (uid \(other.uid)), not by you: lrtop never writes into another user's file"),
                "\(out.stderr)")
        #expect(try String(contentsOfFile: dir.path("tmp/run.jsonl"), encoding: .utf8) == "theirs\n")
    }
}
