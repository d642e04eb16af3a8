/// The release this binary is: `tollgate --version`, the status page, the image tag.
public enum TollgateVersion {
    public static let current = "0.9.0"
}
