#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import LRLog

/// The view a person chose (theme, zoom, loss smoothing), remembered between sessions in
/// `$XDG_CONFIG_HOME/lrtop/view.conf` (`~/.config/lrtop/view.conf` when XDG_CONFIG_HOME is unset), as
/// `key = value` lines. A missing or unreadable file is the defaults; a line it does not know is ignored.
public struct ViewPreferences: Equatable, Sendable {
    public var theme: String?
    /// Index into `Dashboard.zoomLevels` and `RunModel.smoothingWeights`.
    public var zoom: Int?
    public var smoothing: Int?

    public init(theme: String? = nil, zoom: Int? = nil, smoothing: Int? = nil) {
        self.theme = theme; self.zoom = zoom; self.smoothing = smoothing
    }

    /// The file, from the environment; nil when neither XDG_CONFIG_HOME nor HOME is set.
    public static func file(environment: [String: String] = ProcessEnvironment.current) -> String? {
        if let x = environment["XDG_CONFIG_HOME"], !x.isEmpty { return x + "/lrtop/view.conf" }
        if let h = environment["HOME"], !h.isEmpty { return h + "/.config/lrtop/view.conf" }
        return nil
    }

    public init(text: String) {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "theme": theme = parts[1].isEmpty ? nil : parts[1]
            case "zoom": zoom = Dashboard.zoomLevels.firstIndex { "\($0)" == parts[1] }
            case "smoothing": smoothing = Double(parts[1]).flatMap { w in RunModel.smoothingWeights.firstIndex(of: w) }
            default: continue
            }
        }
    }

    public var text: String {
        var lines = ["# lrtop remembers the view you chose here (t, z, e); delete this file to forget it."]
        if let theme { lines.append("theme = " + theme) }
        if let zoom, Dashboard.zoomLevels.indices.contains(zoom) { lines.append("zoom = \(Dashboard.zoomLevels[zoom])") }
        if let smoothing, RunModel.smoothingWeights.indices.contains(smoothing) {
            lines.append("smoothing = \(RunModel.smoothingWeights[smoothing])")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func load(from path: String) -> ViewPreferences {
        guard let f = fopen(path, "r") else { return ViewPreferences() }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 65536 { break }
        }
        return ViewPreferences(text: String(decoding: bytes, as: UTF8.self))
    }

    /// Writes the file (creating its folder) as lrtop writes every file (`SafeFiles`: never through a planted
    /// link); failures are ignored: remembering the view is a convenience.
    public func save(to path: String) {
        try? SafeFiles.writeFile(Array(text.utf8), to: URL(fileURLWithPath: path), what: "the view preferences")
    }
}
