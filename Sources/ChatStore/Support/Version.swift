/// The tool's version, written into archives and job ledgers.
public enum ChatStoreVersion {
    public static let string = "0.1.0"
}
