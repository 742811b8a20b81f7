/// Where each panel of the dashboard goes for a terminal size: compact below 120×36, roomier above.
public struct DashboardLayout: Equatable, Sendable {
    public var header: Rect
    public var lrChart: Rect
    public var lossChart: Rect
    public var status: Rect
    public var throughput: Rect
    public var events: Rect
    public var footer: Rect
    public var isCompact: Bool

    /// nil when the area is below `Dashboard.minimumSize`.
    public init?(area: Rect) {
        guard area.width >= Dashboard.minimumSize.width, area.height >= Dashboard.minimumSize.height else { return nil }
        isCompact = area.width < 120 || area.height < 36
        let rows = area.split(.vertical, [.length(1), .fill(1), .length(1)])
        header = rows[0]; footer = rows[2]
        let body = rows[1]
        let rightWidth = isCompact ? max(26, body.width * 36 / 100) : max(44, body.width * 36 / 100)
        let cols = body.split(.horizontal, [.fill(1), .length(rightWidth)])
        let left = cols[0].split(.vertical, [.percentage(45), .fill(1)])
        lrChart = left[0]; lossChart = left[1]
        let right = cols[1]
        if isCompact {
            let statusHeight = min(11, max(6, right.height - 5 - 3))
            let parts = right.split(.vertical, [.length(statusHeight), .length(5), .fill(1)])
            status = parts[0]; throughput = parts[1]; events = parts[2]
        } else {
            let statusHeight = min(16, max(10, right.height * 40 / 100))
            let parts = right.split(.vertical, [.length(statusHeight), .length(9), .fill(1)])
            status = parts[0]; throughput = parts[1]; events = parts[2]
        }
    }
}
