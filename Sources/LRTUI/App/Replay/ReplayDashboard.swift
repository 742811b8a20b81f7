import LRLog

// The dashboard of a replay: one RunModel per run, built in bulk from its columns.
extension ReplaySource {
    /// Summaries per level for a replayed run of `rows` steps: every step while the run has at most 131,072 steps
    /// (every chart column exact at any zoom); beyond, the last 65,536 steps exactly and the rest in blocks of 8
    /// (a million steps: about 10 MB per track instead of 55).
    public static func retainedBlocks(forRows rows: Int) -> Int {
        min(max(2048, rows / 2 + 1), 65_536)
    }

    /// The dashboard of this replay: one model per run, each built in bulk from its columns; the first follows
    /// the cursor, the others are overlaid in their own colours with a legend.
    public func makeDashboard(theme: Theme = .builtinDefault, depth: ColorDepth = .truecolor,
                              themeStore: ThemeStore? = nil) -> Dashboard {
        var models: [RunModel] = []
        for (i, run) in runs.enumerated() {
            let model: RunModel
            let blocks = Self.retainedBlocks(forRows: axes[i].count)
            if i == 0 {
                model = RunModel(source: self, status: statusAtCursor(), retainedBlocks: blocks)
            } else {
                model = RunModel(source: nil, status: Self.baseStatus(run, alignment: alignment, endX: axes[i].lastX ?? 0),
                                 retainedBlocks: blocks)
            }
            model.ingest(run: run, axis: axes[i])
            models.append(model)
        }
        let dashboard = Dashboard(runs: models, theme: theme, depth: depth, themeStore: themeStore)
        dashboard.xAxis = xAxis
        return dashboard
    }
}
