import ChatStore
import ChatStorePostgres
import Foundation

extension TestDatabase {
    /// A fresh database migrated to the latest schema.
    public static func migrated<T>(_ body: (PostgresConnection, ConnectionSettings) throws -> T) throws -> T {
        try withSettings { conn, settings in
            try Migrator(migrations: Migration.embedded(), logger: logger).migrate(connection: conn)
            return try body(conn, settings)
        }
    }

    /// Inserts two users and a direct conversation between them (ids 1, 2 and conversation 100).
    public static func seedConversation(_ conn: PostgresConnection) throws {
        try conn.executeScript("""
            INSERT INTO chat.users (user_id, handle, display_name) VALUES (1, 'ann', 'Ann'), (2, 'bob', 'Bob');
            INSERT INTO chat.conversations (conversation_id, kind, member_limit, created_by) VALUES (100, 'direct', 2, 1);
            INSERT INTO chat.members (conversation_id, user_id, joined_at) VALUES (100, 1, '2020-01-01'), (100, 2, '2020-01-01');
            """)
    }
}
