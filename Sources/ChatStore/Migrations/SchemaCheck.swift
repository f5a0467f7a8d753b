import ChatStorePostgres
import Foundation

/// The database's schema does not match this binary: every command that reads or writes the
/// schema refuses to run (exit 5) and says what to do. Only `migrate` works on any version.
public struct SchemaMismatch: Error, CustomStringConvertible, LocalizedError {
    public enum Problem: Sendable, Equatable {
        /// No chatstore schema (chat.schema_migrations is missing).
        case unmigrated
        /// Migrated to an older version than this binary's latest.
        case older(Int)
        /// Migrated by a newer chatstore.
        case newer(Int)
        /// The role may not use schema chat.
        case noPrivilege(String)
    }
    public let problem: Problem
    public let latest: Int

    public var description: String {
        switch problem {
        case .unmigrated:
            return "the database has no chatstore schema (chat.schema_migrations is missing): run `chatstore migrate` first"
        case .older(let v):
            return "the database's schema is at version \(v), this chatstore needs \(latest): run `chatstore migrate` (`chatstore migrate plan` lists what it will apply)"
        case .newer(let v):
            return "the database's schema is at version \(v), newer than this chatstore knows (\(latest)): upgrade chatstore before running it against this database"
        case .noPrivilege(let role):
            return "the role \(role) may not use schema chat: GRANT chatstore_batch TO \(role) (nightly, jobs, ingest) or chatstore_readonly (reports, exports)"
        }
    }
    public var errorDescription: String? { description }
}

/// Checks that a database is at exactly the schema version this binary's migrations end at.
public enum SchemaCheck {
    /// Throws `SchemaMismatch` unless the schema is migrated to this binary's latest version.
    public static func require(_ conn: PostgresConnection) throws {
        let latest = try Migration.embedded().last?.version ?? 0
        // has_schema_privilege is only evaluated when the schema exists (it errors otherwise).
        let row = try conn.queryOne("""
            SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'chat')
                        THEN has_schema_privilege(current_user, 'chat', 'USAGE') END AS usable,
                   current_user AS role
            """)!
        guard let usable = try row.decode(Bool?.self, "usable") else { throw SchemaMismatch(problem: .unmigrated, latest: latest) }
        guard usable else { throw SchemaMismatch(problem: .noPrivilege(try row.decode(String.self, "role")), latest: latest) }
        guard try conn.scalar(Bool.self, "SELECT to_regclass('chat.schema_migrations') IS NOT NULL") else {
            throw SchemaMismatch(problem: .unmigrated, latest: latest)
        }
        let current = try conn.scalar(Int.self, "SELECT coalesce(max(version), 0) FROM chat.schema_migrations WHERE completed")
        if current == 0 { throw SchemaMismatch(problem: .unmigrated, latest: latest) }
        if current < latest { throw SchemaMismatch(problem: .older(current), latest: latest) }
        if current > latest { throw SchemaMismatch(problem: .newer(current), latest: latest) }
    }
}
