/// Who is making the current change: the admin middleware sets the token's name for the
/// request's task, so the services record it without every call passing it along.
public enum AuditActor {
    @TaskLocal public static var current: String?
}
