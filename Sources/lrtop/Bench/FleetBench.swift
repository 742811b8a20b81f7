import Foundation
import LRBridge
import LRLog

/// `lrtop bench --fleet SECONDS`: what following every live run of the machine costs the viewer. From a start, the
/// time until the fleet's snapshot holds `expected` runs each with a status (the first full frame of `lrtop runs`);
/// then, over `seconds`, how often each run's status is new in the snapshot (the table's refresh), and the CPU the
/// whole process used (its I/O thread included) with a viewer reading the snapshot 10 times a second, as a table
/// draws. bench/runs_bench.py starts the runs and reads the JSON.
struct FleetBench {
    var seconds: Double
    var expected: Int

    struct Result: Codable {
        var runs: Int
        var first_snapshot_s: Double?
        var refresh_hz_median: Double
        var refresh_hz_min: Double
        var cpu_percent: Double
        var seconds: Double
    }

    func run(json: Bool) throws {
        let fleet = Fleet()
        let start = Date()
        fleet.start()
        defer { fleet.close() }
        var first: Double?
        while Date().timeIntervalSince(start) < 60 {
            let rows = fleet.snapshot().flatMap { [$0] + $0.ranks }
            if rows.filter({ $0.status != nil }).count >= expected { first = Date().timeIntervalSince(start); break }
            usleep(5_000)
        }
        let cpuBefore = Self.cpuSeconds(), wallBefore = Date()
        var updates: [FleetRowID: Int] = [:]
        var lastSeen: [FleetRowID: Date] = [:]
        while Date().timeIntervalSince(wallBefore) < seconds {
            for row in fleet.snapshot().flatMap({ [$0] + $0.ranks }) {
                guard let at = row.statusAt else { continue }
                if let before = lastSeen[row.id], before != at { updates[row.id, default: 0] += 1 }
                lastSeen[row.id] = at
            }
            usleep(100_000)
        }
        let wall = Date().timeIntervalSince(wallBefore)
        let cpu = Self.cpuSeconds() - cpuBefore
        let rates = lastSeen.keys.map { Double(updates[$0] ?? 0) / wall }.sorted()
        let result = Result(runs: lastSeen.count, first_snapshot_s: first,
                            refresh_hz_median: rates.isEmpty ? 0 : rates[rates.count / 2], refresh_hz_min: rates.first ?? 0,
                            cpu_percent: 100 * cpu / wall, seconds: wall)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            printOut(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            printOut(String(format: "lrtop bench --fleet: %d runs, first full snapshot %@, refresh median %.2f Hz (min %.2f), CPU %.2f%% of a core",
                            result.runs, first.map { String(format: "%.3f s", $0) } ?? "not within 60 s",
                            result.refresh_hz_median, result.refresh_hz_min, result.cpu_percent))
        }
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
