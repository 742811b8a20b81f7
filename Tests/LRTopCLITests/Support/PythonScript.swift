import Foundation

/// Starts `script` (Python source) in the test venv, in `dir`, with this checkout's lrtop package first on the path
/// and one torch thread; its output is dropped.
func startPythonScript(_ script: String, in dir: TempDir) throws -> Process {
    try script.write(toFile: dir.path("loop.py"), atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: venvPython!)
    process.arguments = ["loop.py"]
    process.currentDirectoryURL = dir.url
    var env = ProcessInfo.processInfo.environment
    env["PYTHONPATH"] = packageRoot.appendingPathComponent("python").path
    env["OMP_NUM_THREADS"] = "1"
    process.environment = env
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return process
}
