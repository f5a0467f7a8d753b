/// The "Examples:" section of a command's help: every command shows at least one.
enum Examples {
    /// `prefix` (the command's discussion, if any), then the examples, one per line.
    static func text(_ examples: String..., prefix: String = "") -> String {
        let list = "Examples:\n" + examples.map { "  " + $0 }.joined(separator: "\n")
        return prefix.isEmpty ? list : prefix + "\n\n" + list
    }
}
