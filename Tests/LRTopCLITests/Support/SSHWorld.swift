import Foundation
import Glibc
import Testing

let sshdInstalled = FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh")

/// Why the loopback sshd cannot run here (nil when it can): sshd needs its privilege-separation folder, which only
/// root can create.
let sshdUnavailable: String? = {
    if !sshdInstalled { return "needs Debian's openssh-server and openssh-client (.ci/install installs them)" }
    if !FileManager.default.fileExists(atPath: "/run/sshd") {
        if getuid() != 0 { return "sshd needs /run/sshd, which only root can create (CI runs as root)" }
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o755])
    }
    return nil
}()

/// A "remote host" on this machine for the SSH tests, as real as one can be without a second machine: OpenSSH's
/// sshd on 127.0.0.1 at free ports, a throwaway host key and user key, password logins off, and an ssh config that
/// `LRTOP_SSH_COMMAND="ssh -F <config>"` hands to lrtop. The two sides keep separate folders: the remote's socket and
/// state folders (sshd's `SetEnv` gives every session there its own XDG_RUNTIME_DIR and XDG_STATE_HOME, and runs
/// started "there" get the same), and lrtop's own (its SSH sockets, its copies). Hosts in the config:
/// - `loop`: the server that forwards Unix sockets,
/// - `nofwd`: a second server with `AllowStreamLocalForwarding no` (the relay fallback),
/// - `noauth`: `loop` with a key it does not know,
/// - `closed`: a port nobody listens on,
/// - `node`: an alias for `loop` named as this machine (for Slurm, whose node is this host).
final class SSHWorld {
    let dir: String
    let config: String
    let remoteRuntime: String, remoteState: String
    let localRuntime: String, localTemp: String, localConfig: String
    private(set) var servers: [String: (port: Int, pid: pid_t, forwarding: Bool)] = [:]
    let nodeName: String

    init() throws {
        // Short: forwarded socket paths live under it (108 bytes at most).
        dir = "/tmp/lrs-\(UUID().uuidString.prefix(6))"
        for sub in ["", "/remote", "/state", "/local", "/tmp", "/config"] {
            try FileManager.default.createDirectory(atPath: dir + sub, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        remoteRuntime = dir + "/remote"; remoteState = dir + "/state"
        localRuntime = dir + "/local"; localTemp = dir + "/tmp"; localConfig = dir + "/config"
        config = dir + "/ssh_config"
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        nodeName = String(String(cString: name).split(separator: ".").first ?? "localhost")
        _ = try runCleanly(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir + "/host_key"])
        _ = try runCleanly(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir + "/user_key"])
        _ = try runCleanly(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir + "/stranger_key"])
        try FileManager.default.copyItem(atPath: dir + "/user_key.pub", toPath: dir + "/authorized_keys")
        try start("loop", forwarding: true)
        try start("nofwd", forwarding: false)
        let closed = try Self.freePort()
        let loop = servers["loop"]!.port
        var text = ""
        func host(_ alias: String, port: Int, key: String = "user_key") {
            text += """
            Host \(alias)
              HostName 127.0.0.1
              Port \(port)
              User \(NSUserName())
              IdentityFile \(dir)/\(key)
              IdentitiesOnly yes
              IdentityAgent none
              UserKnownHostsFile \(dir)/known_hosts
              StrictHostKeyChecking accept-new
              LogLevel ERROR

            """
        }
        host("loop", port: loop)
        host("nofwd", port: servers["nofwd"]!.port)
        host("noauth", port: loop, key: "stranger_key")
        host("closed", port: closed)
        host(nodeName, port: loop)
        try text.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// The environment of an lrtop run on the "laptop" side.
    var lrtopEnvironment: [String: String] {
        ["LRTOP_SSH_COMMAND": "ssh -F \(config)", "XDG_RUNTIME_DIR": localRuntime, "TMPDIR": localTemp,
         "XDG_CONFIG_HOME": localConfig]
    }

    /// The environment of a run started "there".
    var remoteEnvironment: [String: String] {
        ["XDG_RUNTIME_DIR": remoteRuntime, "XDG_STATE_HOME": remoteState]
    }

    /// `env K=V ... ` for a tmux command line.
    func envPrefix(_ env: [String: String]) -> String {
        "env " + env.sorted { $0.key < $1.key }.map { "\($0.key)='\($0.value)'" }.joined(separator: " ") + " "
    }

    /// Starts (or restarts, on the same port) a server.
    func start(_ alias: String, forwarding: Bool) throws {
        let port = try servers[alias]?.port ?? Self.freePort()
        let cfg = "\(dir)/sshd_\(alias).conf"
        try """
        ListenAddress 127.0.0.1
        Port \(port)
        HostKey \(dir)/host_key
        AuthorizedKeysFile \(dir)/authorized_keys
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        UsePAM no
        StrictModes no
        PidFile \(dir)/sshd_\(alias).pid
        AllowStreamLocalForwarding \(forwarding ? "yes" : "no")
        SetEnv XDG_RUNTIME_DIR=\(remoteRuntime) XDG_STATE_HOME=\(remoteState)
        LogLevel ERROR

        """.write(toFile: cfg, atomically: true, encoding: .utf8)
        let pid = try spawnInBackground(["/usr/sbin/sshd", "-D", "-e", "-f", cfg], output: "\(dir)/sshd_\(alias).log")
        servers[alias] = (port, pid, forwarding)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.listening(port) { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let log = (try? String(contentsOfFile: "\(dir)/sshd_\(alias).log", encoding: .utf8)) ?? ""
                throw SSHWorldError("sshd for \(alias) exited: \(log)")
            }
            usleep(20_000)
        }
        throw SSHWorldError("sshd for \(alias) did not listen on \(port)")
    }

    /// Stops a server's listener (its sessions' processes go on until their connections end).
    func stop(_ alias: String) {
        guard let s = servers[alias] else { return }
        kill(s.pid, SIGTERM)
        var status: Int32 = 0
        waitpid(s.pid, &status, 0)
    }

    /// The pids of processes whose command line mentions `text` (ssh clients and masters: they carry the config's
    /// path or the control socket's).
    static func processes(mentioning text: String) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains(text) ? pid : nil
        }
    }

    /// lrtop's master connections for this world (ssh renames a master `ssh: <control path> [mux]`).
    var masters: [pid_t] { Self.processes(mentioning: localRuntime).filter { Self.commandLine($0).contains("[mux]") } }

    static func commandLine(_ pid: pid_t) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    /// What lrtop left behind: ssh processes and files of this world on this side, copies, and on the remote side
    /// processes that mention `also` (the run's log, followed by `tail`) or the remote socket folder (relays).
    func leftovers(also: [String] = []) -> [String] {
        var pids = Self.processes(mentioning: config) + Self.processes(mentioning: localRuntime)
            + Self.processes(mentioning: remoteRuntime)
        for text in also { pids += Self.processes(mentioning: text) }
        // (Not the tmux server and shell that ran the command: their command lines hold it whole.)
        var found = Set(pids).map { "process \($0): \(Self.commandLine($0))" }.filter { !$0.contains("LRTOP_EXITED") }
        let sshFolder = localRuntime + "/lrtop-\(getuid())/ssh"
        found += ((try? FileManager.default.contentsOfDirectory(atPath: sshFolder)) ?? []).map { "file \(sshFolder)/\($0)" }
        found += ((try? FileManager.default.contentsOfDirectory(atPath: localTemp)) ?? []).map { "copy \(localTemp)/\($0)" }
        return found.sorted()
    }

    /// Waits up to `timeout` for `leftovers(also:)` to be empty; returns what is left.
    func waitForNoLeftovers(also: [String] = [], timeout: TimeInterval = 10) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var left = leftovers(also: also)
        while !left.isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            left = leftovers(also: also)
        }
        return left
    }

    func close() {
        for pid in masters { kill(pid, SIGKILL) }
        for alias in servers.keys { stop(alias) }
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw SSHWorldError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func listening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

struct SSHWorldError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Starts a program in the background with no signal blocked (see `runCleanly`), its output into a file.
func spawnInBackground(_ argv: [String], output: String, environment: [String: String] = [:]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    return try spawnWithDefaultSignals(argv, &actions, environment: env)
}
