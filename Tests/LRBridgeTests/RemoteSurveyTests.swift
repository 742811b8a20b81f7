import Foundation
import Glibc
import Testing
@testable import LRBridge

/// What lrtop reads from another host, checked without SSH: the survey script run by this machine's own /bin/sh
/// over real registry entries, sockets and logs, and the parsers for everything a host or Slurm sends back.
@Suite(.serialized)
struct RemoteSurveyTests {
    func survey(_ spec: String = "", state: String, runtime: String) throws -> RemoteSurvey {
        let r = try Subprocess.run(["/bin/sh", "-s", "--", spec], input: Array(RemoteSurvey.script.utf8),
                                   environment: ["XDG_STATE_HOME": state, "XDG_RUNTIME_DIR": runtime, "TMPDIR": runtime])
        #expect(r.status == 0, "\(r.errorText)")
        return RemoteSurvey.parse(r.stdout)
    }

    static let me = RemoteSurvey.shortName(ProcessInfo.processInfo.hostName)

    func entry(host: String = me, pid: Int32 = getpid(), socket: String, name: String = "reg-run", log: String? = nil,
               heartbeat: Double? = nil, extra: String = "") -> String {
        let beat = heartbeat ?? Date().timeIntervalSince1970
        let log = log ?? "/abs/\(name)/run.jsonl"
        return #"{"registry":1,"host":"\#(host)","pid":\#(pid),"socket":"\#(socket)","log":"\#(log)","run_dir":"/abs/\#(name)","name":"\#(name)","kind":"lightning","world_size":2,"rank":0,"start":"2026-12-06T20:00:00Z","heartbeat":\#(beat)\#(extra)}"#
    }

    @Test func theScriptFindsLiveRunsFromTheRegistryAndTheSocketFolderAndDropsTheDead() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let state = dir.file("state"), runtime = dir.file("rt")
        let registry = state + "/lrtop/runs"
        let sockets = runtime + "/lrtop-\(getuid())"
        try FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true)
        // A live bridged run: its socket in the folder, its log held open by "its" process (this one).
        let live = try FakeBridgeServer(path: sockets + "/\(getpid())-0a1b2c3d.sock")
        defer { live.stop() }
        try FileManager.default.createDirectory(atPath: dir.file("runs/alpha"), withIntermediateDirectories: true)
        let log = dir.file("runs/alpha/run.jsonl")
        try (#"{"type":"header","schema":1,"socket":"\#(live.path)"}"# + "\n" +
             #"{"type":"step","step":41,"loss":0.5}"# + "\n" + #"{"type":"step","step":42,"loss":0.25}"# + "\n")
            .write(toFile: log, atomically: true, encoding: .utf8)
        let held = try FileHandle(forReadingFrom: URL(fileURLWithPath: log))
        defer { try? held.close() }
        // A run whose socket folder was squatted took a private one beside it (python/lrtop/server.py): found too.
        let beside = runtime + "/lrtop-\(getuid())-k3x9q2ab"
        try FileManager.default.createDirectory(atPath: beside, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let squatted = try FakeBridgeServer(path: beside + "/\(getpid())-4e5f6a7b.sock")
        defer { squatted.stop() }
        // Registry: this run's entry (adds its name and kind), one of another node (shared home), a stale one, a dead
        // process of this host (removed), and garbage.
        try entry(socket: live.path, name: "alpha-reg", log: log).write(toFile: registry + "/\(Self.me)-\(getpid())-0a1b2c3d.json", atomically: true, encoding: .utf8)
        try entry(host: "gpu9", pid: 77, socket: "/run/user/1/lrtop-1/77-aaaaaaaa.sock", name: "far", extra: #","slurm":{"job_id":"123","proc_id":0,"node":"gpu9"}"#)
            .write(toFile: registry + "/gpu9-77-aaaaaaaa.json", atomically: true, encoding: .utf8)
        try entry(host: "gpu8", pid: 78, socket: "/x/78-bbbbbbbb.sock", heartbeat: Date().timeIntervalSince1970 - 600)
            .write(toFile: registry + "/gpu8-78-bbbbbbbb.json", atomically: true, encoding: .utf8)
        try entry(pid: 999_999, socket: sockets + "/999999-cccccccc.sock")
            .write(toFile: registry + "/\(Self.me)-999999-cccccccc.json", atomically: true, encoding: .utf8)
        try "{not json".write(toFile: registry + "/\(Self.me)-1-dddddddd.json", atomically: true, encoding: .utf8)
        try String(repeating: "x", count: 20_000).write(toFile: registry + "/big-2-eeeeeeee.json", atomically: true, encoding: .utf8)

        let s = try survey(state: state, runtime: runtime)
        #expect(s.hostname == Self.me)
        #expect(s.now > 1.7e9)
        #expect(s.folders.contains(sockets))
        // (Runs of this user elsewhere on the machine, in /tmp/lrtop-UID, are listed too: only this one is looked at.)
        let mine = s.runs.filter { $0.socket.hasPrefix(sockets + "/") }
        #expect(mine.count == 1)
        #expect(s.folders.contains(beside) && s.runs.contains { $0.socket == squatted.path }, "\(s.runs.map(\.socket))")
        let run = try #require(mine.first)
        #expect(run.socket == live.path && run.pid == Int(getpid()))
        #expect(run.log == log && run.name == "alpha-reg" && run.kind == "lightning")
        #expect(run.step == 42 && run.loss == 0.25)
        #expect(s.entries.compactMap(\.name).sorted() == ["alpha-reg", "far"])
        #expect(s.entries.first { $0.host == "gpu9" }?.slurm == RegistryEntry.Slurm(jobID: "123", procID: 0, node: "gpu9"))
        // The dead process's entry on this host is gone from the folder; the other host's stale one is only skipped.
        #expect(!FileManager.default.fileExists(atPath: registry + "/\(Self.me)-999999-cccccccc.json"))
        #expect(FileManager.default.fileExists(atPath: registry + "/gpu8-78-bbbbbbbb.json"))
        #expect(s.skipped >= 3)

        // A path: the run's folder, with its header and how it ended.
        try (#"{"type":"end","reason":"stopped"}"# + "\n").appendTo(log)
        let named = try survey("runs/alpha", state: state, runtime: runtime)
        #expect(named.target == .missing(NSHomeDirectory() + "/runs/alpha") || named.target == .missing(ProcessInfo.processInfo.environment["HOME"]! + "/runs/alpha"))
        let absolute = try survey(dir.file("runs"), state: state, runtime: runtime)
        #expect(absolute.target == .logs)
        #expect(absolute.logs.map(\.path) == [log])
        #expect(absolute.logs.first?.socket == live.path && absolute.logs.first?.endReason == "stopped")
        #expect(try survey(live.path, state: state, runtime: runtime).target == .socket(live.path))
    }

    @Test func anEntryWhoseProcessLivesButWhoseSocketIsGoneIsSkipped() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        let state = dir.file("state"), runtime = dir.file("rt")
        let registry = state + "/lrtop/runs"
        // Its socket in a folder the script does not look in (a run told another socket folder), so only the
        // socket's absence says the entry is stale; its process (this one) lives.
        let elsewhere = dir.file("elsewhere")
        try FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let kept = try FakeBridgeServer(path: elsewhere + "/\(getpid())-11111111.sock")
        defer { kept.stop() }
        try entry(socket: kept.path, name: "alive").write(toFile: registry + "/\(Self.me)-\(getpid())-11111111.json", atomically: true, encoding: .utf8)
        // Swift's encoder writes slashes as \/: the script reads the path through them.
        try entry(socket: (elsewhere + "/\(getpid())-22222222.sock").replacingOccurrences(of: "/", with: "\\/"), name: "closed")
            .write(toFile: registry + "/\(Self.me)-\(getpid())-22222222.json", atomically: true, encoding: .utf8)
        let s = try survey(state: state, runtime: runtime)
        #expect(s.entries.compactMap(\.name) == ["alive"])
        #expect(s.runs.contains { $0.name == "alive" } && !s.runs.contains { $0.name == "closed" })
        #expect(s.skipped == 1)
        // The entry itself stays: its process may still serve it again; the registry's writer owns it.
        #expect(FileManager.default.fileExists(atPath: registry + "/\(Self.me)-\(getpid())-22222222.json"))
    }

    @Test func registryEntriesAreCheckedFieldByField() {
        func parse(_ text: String) -> RegistryEntry? { RegistryEntry.parse(Array(text.utf8)) }
        let good = parse(entry(host: "gpu7.cluster.org", pid: 12, socket: "/s/12-abcdabcd.sock"))
        #expect(good?.host == "gpu7" && good?.pid == 12 && good?.worldSize == 2 && good?.rank == 0)
        #expect(parse(#"{"registry":2,"host":"a","pid":1,"socket":"/s"}"#) == nil)          // a future format
        #expect(parse(#"{"registry":1,"host":"a","pid":"1","socket":"/s"}"#) == nil)        // pid as a string
        #expect(parse(#"{"registry":1,"host":"a","pid":true,"socket":"/s"}"#) == nil)
        #expect(parse(#"{"registry":1,"host":"a","pid":-4,"socket":"/s"}"#) == nil)
        #expect(parse(#"{"registry":1,"host":"a","pid":1,"socket":"relative.sock"}"#) == nil)
        #expect(parse(#"[1,2]"#) == nil)
        #expect(parse(#"{"registry":1,"host":"a","pid":1,"socket":"/s"}"# + String(repeating: " ", count: 17_000)) == nil)
        // A name with a control character (an escape sequence for the terminal) reads as no name.
        let hostile = parse(#"{"registry":1,"host":"a","pid":1,"socket":"/s","name":"x\u001b[2J","world_size":"2"}"#)
        #expect(hostile != nil && hostile?.name == nil && hostile?.worldSize == nil)
    }

    @Test func argumentsOnAnotherHostAreToldApartFromLocalPaths() {
        #expect(RemoteTarget.parse("gpu7:", existsHere: { _ in false }) == .host("gpu7", spec: ""))
        #expect(RemoteTarget.parse("me@gpu7:runs/a", existsHere: { _ in false }) == .host("me@gpu7", spec: "runs/a"))
        #expect(RemoteTarget.parse("gpu7:/abs/run", existsHere: { _ in false }) == .host("gpu7", spec: "/abs/run"))
        #expect(RemoteTarget.parse("[::1]:r1", existsHere: { _ in false }) == .host("::1", spec: "r1"))
        #expect(RemoteTarget.parse("slurm:123_4", existsHere: { _ in true }) == .slurm(job: "123_4"))
        #expect(RemoteTarget.parse("runs/a:b", existsHere: { _ in false }) == nil)      // a path with a colon
        #expect(RemoteTarget.parse("./gpu7:x", existsHere: { _ in false }) == nil)
        #expect(RemoteTarget.parse("odd:name", existsHere: { _ in true }) == nil)        // exists here
        #expect(RemoteTarget.parse("runs/a", existsHere: { _ in false }) == nil)
        #expect(RemoteTarget.validJob("123") && RemoteTarget.validJob("123_4") && !RemoteTarget.validJob("12;rm"))
        #expect(throws: RemoteError.self) { try SSHMaster.validate(host: "-oProxyCommand=x") }
        #expect(throws: RemoteError.self) { try SSHMaster.validate(host: "a b") }
    }

    @Test func whichRunASpecNamesAndWhyNoneCanBeAttached() throws {
        var s = RemoteSurvey()
        s.registry = "/h/.local/state/lrtop/runs"
        s.folders = ["/tmp/lrtop-1"]
        #expect(throws: RemoteError(.noRun, "no live run on gpu7 (looked in /h/.local/state/lrtop/runs, /tmp/lrtop-1): start one there with lrtop.attach(optimizer, ...), or name its folder: lrtop attach gpu7:RUN_DIR")) {
            try RemoteChoice.choose(spec: "", in: s, host: "gpu7")
        }
        let a = RemoteSurvey.Run(socket: "/tmp/lrtop-1/5-aaaaaaaa.sock", pid: 5, log: "/r/a/run.jsonl", name: "a")
        let b = RemoteSurvey.Run(socket: "/tmp/lrtop-1/6-bbbbbbbb.sock", pid: 6, log: "/r/b/run.jsonl", name: "b")
        s.runs = [a, b]
        #expect(try RemoteChoice.choose(spec: "", in: s, host: "gpu7") == .several([a, b]))
        #expect(try RemoteChoice.choose(spec: "b", in: s, host: "gpu7") == .run(b))
        #expect(try RemoteChoice.choose(spec: "5", in: s, host: "gpu7") == .run(a))
        #expect(throws: RemoteError(.noRun, "no live run named 'c' on gpu7 (live there: a, b); an ended run replays with 'lrtop replay gpu7:RUN_DIR'")) {
            try RemoteChoice.choose(spec: "c", in: s, host: "gpu7")
        }
        s.target = .logs
        s.logs = [RemoteSurvey.Log(path: "/r/old/run.jsonl", size: 10, socket: "/tmp/lrtop-1/4-cccccccc.sock", isRunLog: true,
                                   endReason: "completed")]
        #expect(throws: RemoteError(.noRun, "the run gpu7:/r/old has ended (completed), so there is nothing to steer: replay it with 'lrtop replay gpu7:/r/old'")) {
            try RemoteChoice.choose(spec: "/r/old", in: s, host: "gpu7")
        }
        s.logs[0].endReason = nil
        #expect(throws: RemoteError(.noRun, "the run gpu7:/r/old is not running (its socket is gone and its log has no end record: the process exited or was killed); what it logged replays with 'lrtop replay gpu7:/r/old'")) {
            try RemoteChoice.choose(spec: "/r/old", in: s, host: "gpu7")
        }
        s.logs.append(RemoteSurvey.Log(path: "/r/b/run.jsonl", size: 10, socket: b.socket, isRunLog: true))
        #expect(try RemoteChoice.choose(spec: "/r", in: s, host: "gpu7") == .run(b))
    }

    @Test func sshFailuresAreSortedIntoWhatTheUserCanDo() {
        func kind(_ stderr: String) -> RemoteError.Kind { SSHCommand.failure(host: "h", stderr: stderr, status: 255).kind }
        #expect(kind("root@127.0.0.1: Permission denied (publickey).\n") == .authentication)
        #expect(kind("ssh: connect to host 127.0.0.1 port 9: Connection refused\n") == .unreachable)
        #expect(kind("ssh: Could not resolve hostname nohost: Name or service not known\n") == .unreachable)
        #expect(kind("Host key verification failed.\n") == .hostKey)
        #expect(kind("") == .unreachable)
        #expect(SSHCommand.failure(host: "h", stderr: "Warning: Permanently added 'x'\nPermission denied (publickey).\n", status: 255)
            .description.hasPrefix("h refused the login (Permission denied (publickey).): "))
        // LRTOP_SSH_COMMAND is a shell command line the arguments are appended to, as GIT_SSH_COMMAND is.
        #expect(SSHCommand(command: "ssh -F '/my cfg'").argv(["-O", "check", "h"])
                == ["/bin/sh", "-c", "ssh -F '/my cfg' \"$@\"", "lrtop-ssh", "-O", "check", "h"])
        #expect(SSHCommand(command: "  ").argv(["h"]) == ["ssh", "h"])
    }

    @Test func quotedWordsComeBackWhole() throws {
        for word in ["plain", "it's", "a b", "$HOME", "`x`", "\"q\"", "back\\slash", "tab\there", "!bang"] {
            let r = try Subprocess.run(["/bin/sh", "-c", "printf '%s' " + SSHCommand.quote(word)])
            #expect(r.text == word)
        }
    }

    @Test func aHostWithNoRelayProgramIsSaidInOneLine() throws {
        // The probe script with nothing on PATH: no python3, socat or nc.
        let none = try Subprocess.run(["/bin/sh", "-s", "--", "/run/x.sock", "", "any"], input: Array(RemoteConnector.probeScript.utf8),
                                      environment: ["PATH": "/nonexistent"])
        #expect(none.text == "none\n")
        let refused = RemoteError(.noForwarding, "gpu7 refused to forward the run's socket (its sshd has AllowStreamLocalForwarding no?)")
        #expect(throws: RemoteError(.noForwarding, "gpu7 refused to forward the run's socket (its sshd has AllowStreamLocalForwarding no?), and gpu7 has no relay program (python with the lrtop package, socat, or OpenBSD nc -U): install one there (pip install lrtop, or apt-get install socat), or allow forwarding (AllowStreamLocalForwarding yes)")) {
            try RemoteConnector.relay(probed: none.text, socket: "/run/x.sock", host: "gpu7", tool: nil, refusedForward: refused)
        }
        // What each tool's answer becomes, quoted for the remote shell.
        #expect(try RemoteConnector.relay(probed: "relay\tsocat\n", socket: "/run/a b.sock", host: "h", tool: nil, refusedForward: nil)
                == Relay(tool: .socat, command: "socat - 'UNIX-CONNECT:/run/a b.sock'"))
        #expect(try RemoteConnector.relay(probed: "relay\tpython\t/v/bin/python\t/src/python\n", socket: "/s", host: "h", tool: nil,
                                          refusedForward: nil)
                == Relay(tool: .python, command: "env PYTHONPATH='/src/python' '/v/bin/python' -m lrtop.relay '/s'"))
        #expect(try RemoteConnector.relay(probed: "relay\tnc\n", socket: "/s", host: "h", tool: .nc, refusedForward: nil).command == "nc -U '/s'")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/socat") {
            let socat = try Subprocess.run(["/bin/sh", "-s", "--", "/run/x.sock", "", "socat"], input: Array(RemoteConnector.probeScript.utf8))
            #expect(socat.text == "relay\tsocat\n")
        }
    }

    @Test func squeueLinesAreReadAndGarbageSkipped() {
        let jobs = Slurm.parse("123|gpu|RUNNING|1:02:03|gpu[1-2]|None|train | eval\n124_3|cpu|PENDING|2:00:00||Resources|x\nnot a job\n")
        #expect(jobs.count == 2)
        #expect(jobs[0] == Slurm.Job(id: "123", partition: "gpu", state: "RUNNING", timeLeft: "1:02:03", nodes: "gpu[1-2]",
                                     reason: "None", name: "train | eval"))
        #expect(jobs[1].id == "124_3" && jobs[1].reason == "Resources")
    }

    @Test func aCopiedFileCannotLandOutsideItsFolder() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        for bad in ["../x", "a/../../x", "", "/", "a/\u{1b}b"] {
            #expect(throws: RemoteError.self) { try RemoteFetch.localFile(dir.path, relative: bad) }
        }
        let fd = try RemoteFetch.localFile(dir.path, relative: "subruns/find-lr-3/log.jsonl")
        close(fd)
        #expect(FileManager.default.fileExists(atPath: dir.file("subruns/find-lr-3/log.jsonl")))
        // Never over what is there.
        #expect(throws: RemoteError.self) { try RemoteFetch.localFile(dir.path, relative: "subruns/find-lr-3/log.jsonl") }
        #expect(try RemoteFetch.makeFolder(dir.path, name: "..") == dir.path + "/run")
        #expect(try RemoteFetch.makeFolder(dir.path, name: "run") == dir.path + "/run-2")
    }
}

extension String {
    func appendTo(_ path: String) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? h.close() }
        h.seekToEndOfFile()
        h.write(Data(utf8))
    }
}
