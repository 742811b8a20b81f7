import Foundation
import Testing

/// The `s` menu of a real run in an 80×24 terminal: every scheduler kind of the spec language (as
/// spec/schedulers.json lists them) and a sequence, nothing cut, and the default warmup + cosine can be picked again.
@Suite(.serialized, .enabled(if: tmuxInstalled, "needs tmux"))
struct SchedulerMenuEndToEndTests {
    struct Kind { var name: String; var summary: String; var helps: [String] }

    func kinds() throws -> [Kind] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("spec/schedulers.json"))
        let file = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try #require(file["schedulers"] as? [[String: Any]])
        return list.map { s in
            let options = (s["options"] as? [[String: Any]] ?? []).filter { $0["only"] == nil }
            return Kind(name: s["name"] as! String, summary: s["summary"] as! String,
                        helps: options.map { $0["help"] as! String })
        }
    }

    /// The menu's rows right of the kinds list, read top to bottom with spaces folded. The column starts where
    /// the text beside the first kind (cosine) starts; the box ends at its title row's corner.
    func rightColumn(_ screen: String) -> String {
        let lines = screen.components(separatedBy: "\n").map { Array($0) }
        guard let top = lines.firstIndex(where: { String($0).contains("─ scheduler ─") }), top + 1 < lines.count,
              let boxRight = lines[top].lastIndex(of: "╮") else { return "" }
        let firstRow = lines[top + 1]
        guard let cosine = String(firstRow).range(of: "cosine") else { return "" }
        var x = String(firstRow).distance(from: String(firstRow).startIndex, to: cosine.upperBound)
        while x < firstRow.count, firstRow[x] == " " { x += 1 }
        var out: [String] = []
        for line in lines[(top + 1)...] {
            if line.contains("╰") && line.contains("╯") { break }
            guard x < min(boxRight, line.count) else { continue }
            out.append(String(line[x..<min(boxRight, line.count)]))
        }
        return out.joined(separator: " ").split(separator: " ").joined(separator: " ")
    }

    /// The rows of the menu's box, inside its borders.
    func menuBox(_ screen: String) -> [String] {
        let lines = screen.components(separatedBy: "\n").map { Array($0) }
        guard let top = lines.firstIndex(where: { String($0).contains("─ scheduler ─") }),
              let left = lines[top].firstIndex(of: "╭"), let right = lines[top].lastIndex(of: "╮") else { return [] }
        var out: [String] = []
        for line in lines[(top + 1)...] where line.count > left + 1 {
            if line[left] == "╰" { break }
            out.append(String(line[(left + 1)..<min(right, line.count)]))
        }
        return out
    }

    /// The text stands whole in the column: wrapped lines continue where the previous one ended.
    func showsWhole(_ text: String, in column: String) -> Bool {
        column.contains(text.split(separator: " ").joined(separator: " "))
    }

    @Test func everyKindIsInTheMenuWholeAt80Columns() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let tui = try TmuxSession(
            command: "\(lrtopBinary.path) --data synthetic:spirals --epochs 100000 --batch-size 32 --hidden 32 --run-dir run",
            width: 80, height: 24, directory: dir.url)
        defer { tui.close() }
        try tui.waitFor("learning rate")
        try tui.send("Space")
        try tui.waitFor("paused")
        try tui.send("s")
        let first = try tui.waitFor("─ scheduler ─")
        let all = try kinds()
        #expect(all.count >= 13)
        for k in all {
            #expect(first.contains(" \(k.name) ") || first.contains(" \(k.name)\n") || first.contains("▸ \(k.name)"),
                    "\(k.name) is not in the menu:\n\(first)")
        }
        #expect(first.contains("A -> B"))
        // Walk the list: cosine first, then the sequence, then the rest.
        var seen: Set<String> = []
        for _ in 0..<(all.count + 1) {
            let screen = try tui.screen()
            let selected = screen.components(separatedBy: "\n").compactMap { line -> String? in
                guard let r = line.range(of: "▸ ") else { return nil }
                return line[r.upperBound...].split(separator: " ").first.map(String.init)
            }.first ?? ""
            let right = rightColumn(screen)
            #expect(!menuBox(screen).joined().contains("…"), "cut at 80 columns:\n\(screen)")
            #expect(screen.contains("↑↓ kind  tab fields  type to edit  enter apply  esc cancel"))
            if let k = all.first(where: { $0.name == selected }) {
                seen.insert(k.name)
                #expect(showsWhole(k.summary, in: right), "\(k.name)'s summary is not whole:\n\(screen)")
                for help in k.helps {
                    #expect(showsWhole(help, in: right), "\(k.name): '\(help)' is not whole:\n\(screen)")
                }
            }
            try tui.send("Down")
            _ = try tui.waitUntil(timeout: 5) { $0 != screen }
        }
        #expect(seen == Set(all.map(\.name)))
        // The default warmup + cosine is the sequence entry: pick it again.
        try tui.send("Escape")
        try tui.send("s")
        try tui.waitFor("─ scheduler ─")
        try tui.send("Down")
        try tui.waitFor("sched warmup:steps=")
        try tui.send("Enter")
        _ = try tui.waitUntil(timeout: 10) { !$0.contains("─ scheduler ─") }
        try tui.send("q")
        try tui.waitFor("quit?")
        try tui.send("y")
        try tui.waitFor("LRTOP_EXITED=0")
        let texts = records(try readLog(dir.path("run/run.jsonl")), type: "event").compactMap { $0["text"] as? String }
        #expect(texts.contains { $0.hasPrefix("sched warmup:steps=") && $0.contains("-> cosine") }, "\(texts)")
    }
}
