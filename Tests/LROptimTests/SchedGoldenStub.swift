import LROptim
enum SchedGolden {
    static func check(_ file: JSONValue, name: String) throws -> String? { "not yet" }
}
