import ChatStore
import ChatStorePostgres
import ChatStoreTestSupport
import Foundation
import Testing

@Suite struct SchemaTests {
    @Test func conversationScopedTablesFollowTheCitusRules() throws {
        try TestDatabase.migrated { conn, _ in
            // Conversation-scoped tables: every table in chat with a conversation_id column.
            let tables = try conn.query("""
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'chat' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'conversation_id' AND NOT a.attisdropped)
                ORDER BY 1
                """).map { try $0.decode(String.self, "relname") }
            #expect(Set(tables) == Set(CitusPlan.conversationTables))

            // 1. Every PRIMARY KEY / UNIQUE constraint and every btree index leads with
            //    conversation_id. BRIN indexes on a change time or transaction id (migrations 0004, 0005) are exempt: Citus
            //    only requires unique ones to include the column, and a BRIN summarises page ranges.
            let badIndexes = try conn.query("""
                SELECT t.relname AS tbl, i.relname AS idx
                FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace
                WHERE n.nspname = 'chat' AND t.relname = ANY(string_to_array(\(CitusPlan.conversationTables.joined(separator: ",")), ','))
                  AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = x.indkey[0]) <> 'conversation_id'
                  AND (x.indisunique OR i.relam <> (SELECT oid FROM pg_am WHERE amname = 'brin'))
                """).map { "\(try $0.decode(String.self, "tbl")).\(try $0.decode(String.self, "idx"))" }
            #expect(badIndexes.isEmpty, "indexes not leading with conversation_id: \(badIndexes)")

            // 2. Foreign keys between conversation-scoped tables include conversation_id in the same position.
            let badFKs = try conn.query("""
                SELECT con.conname FROM pg_constraint con
                JOIN pg_class src ON src.oid = con.conrelid JOIN pg_class dst ON dst.oid = con.confrelid
                JOIN pg_namespace n ON n.oid = src.relnamespace
                WHERE con.contype = 'f' AND n.nspname = 'chat' AND con.conparentid = 0
                  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = dst.oid AND a.attname = 'conversation_id')
                  AND NOT EXISTS (
                      SELECT 1 FROM generate_subscripts(con.conkey, 1) k
                      WHERE (SELECT attname FROM pg_attribute WHERE attrelid = src.oid AND attnum = con.conkey[k]) = 'conversation_id'
                        AND (SELECT attname FROM pg_attribute WHERE attrelid = dst.oid AND attnum = con.confkey[k]) = 'conversation_id')
                """).map { try $0.decode(String.self, "conname") }
            #expect(badFKs.isEmpty, "foreign keys without conversation_id: \(badFKs)")

            // 3. No foreign key from a reference table (users) to a distributed one.
            let fromReference = try conn.scalar(Int.self, """
                SELECT count(*) FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid
                JOIN pg_class dst ON dst.oid = con.confrelid
                WHERE con.contype = 'f' AND src.relname = 'users' AND dst.relname <> 'users'
                """)
            #expect(fromReference == 0)

            // 4. No triggers on any chat table (other than the internal FK triggers).
            let triggers = try conn.scalar(Int.self, """
                SELECT count(*) FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'chat' AND NOT tg.tgisinternal
                """)
            #expect(triggers == 0)
        }
    }

    @Test func citusPlanDistributesEveryTableOnce() {
        let s = CitusPlan.statements
        #expect(s.first == "SELECT create_reference_table('chat.users');")
        for t in CitusPlan.conversationTables {
            #expect(s.filter { $0.contains("'chat.\(t)', 'conversation_id'") }.count == 1, "\(t)")
        }
        #expect(s.contains("SELECT create_distributed_table('chat.messages', 'conversation_id', colocate_with => 'chat.conversations');"))
        #expect(s.contains("SELECT create_distributed_table('chat.presence_events', 'user_id', colocate_with => 'none');"))
        // Referenced tables come before the tables that reference them.
        #expect(s.firstIndex { $0.contains("'chat.media'") }! < s.firstIndex { $0.contains("'chat.messages'") }!)
    }

    @Test func migrateCitusWithoutTheExtensionFailsClearly() throws {
        try TestDatabase.migrated(onCitus: false) { _, settings in
            let r = try runCommand(TestPaths.binary, ["migrate", "--citus", "--database-url", settings.conninfo])
            #expect(r.status == 1)
            #expect(r.stderr.contains("citus extension is not installed"))
            let plan = try runCommand(TestPaths.binary, ["migrate", "plan", "--citus", "--database-url", settings.conninfo])
            #expect(plan.status == 0)
            #expect(plan.stdout.contains("create_distributed_table('chat.receipts', 'conversation_id'"))
        }
    }

    @Test func rolesHaveLeastPrivilege() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.seedConversation(conn)
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            // Each group is used as a login role in it would use it (on Citus a SET ROLE to a
            // NOLOGIN group cannot reach the workers).
            var sessions: [String: PostgresConnection] = [:]
            let suffix = UUID().uuidString.prefix(8).lowercased()
            defer {
                sessions.removeAll()
                for group in ["chatstore_readonly", "chatstore_app", "chatstore_batch"] {
                    _ = try? conn.execute(SQL(unsafeRaw: "DROP ROLE IF EXISTS \(group)_login_\(suffix)"))
                }
            }
            func session(_ group: String) throws -> PostgresConnection {
                if let c = sessions[group] { return c }
                let role = "\(group)_login_\(suffix)"
                try conn.execute(SQL(unsafeRaw: "CREATE ROLE \(role) LOGIN IN ROLE \(group)"))
                let c = try PostgresConnection(settings: ConnectionSettings(conninfo: settings.conninfo + " user=\(role)", source: settings.source),
                                               logger: TestDatabase.logger)
                sessions[group] = c
                return c
            }
            func denied(_ role: String, _ sql: SQL) throws -> Bool {
                do {
                    try session(role).transaction { c in
                        try c.execute(sql)
                        throw CancellationError()
                    }
                } catch let e as PostgresError where e.sqlState == .insufficientPrivilege {
                    return true
                } catch is CancellationError {
                    return false
                }
                return false
            }
            let insertMessage: SQL = "INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES (100, 1, now(), 1, 'text', 'hi')"
            #expect(try denied("chatstore_readonly", insertMessage))
            #expect(try !denied("chatstore_readonly", "SELECT count(*) FROM chat.messages"))
            #expect(try !denied("chatstore_app", insertMessage))
            #expect(try denied("chatstore_app", "DELETE FROM chat.messages"))
            #expect(try denied("chatstore_app", "UPDATE chat.partition_config SET premake = 1"))
            #expect(try denied("chatstore_app", "CREATE TABLE chat.x (a int)"))
            #expect(try !denied("chatstore_batch", "DELETE FROM chat.receipts WHERE false"))
            #expect(try !denied("chatstore_batch", "INSERT INTO chat.job_runs (job) VALUES ('t')"))
            #expect(try denied("chatstore_batch", "DROP TABLE chat.messages"))
            #expect(try denied("chatstore_readonly", "UPDATE chat.users SET display_name = 'x'"))
        }
    }

    /// The application's role (migration 0007) as a login role in the group would use it: each
    /// forbidden change is refused with 42501, and each write an application makes still works.
    /// A login in chatstore_batch runs every job of nightly; partition upkeep, which PostgreSQL
    /// allows only to the tables' owner, fails with one line naming the owner and the grant, and
    /// works once the documented grant is made.
    @Test func theBatchRoleRunsTheJobsAndIsToldWhatPartitionUpkeepNeeds() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.generate(settings, users: 60, days: 2)
            let role = "batch_login_\(UUID().uuidString.prefix(8).lowercased())"
            try conn.execute(SQL(unsafeRaw: "CREATE ROLE \(role) LOGIN IN ROLE chatstore_batch"))
            defer { _ = try? conn.execute(SQL(unsafeRaw: "DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)")) }
            let owner = try conn.scalar(String.self, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'chat.messages'::regclass")
            let url = ["--database-url", settings.conninfo + " user=\(role)", "--json"]
            // Three weeks ahead, so partitions must be created.
            let ahead = String(PostgresTimestamp.format(Date().addingTimeInterval(21 * 86_400)).prefix(10))
            let r = try runCommand(TestPaths.binary, ["nightly", "--now", ahead] + url)
            #expect(r.status == 1, "\(r.stderr)")
            let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let jobs = summary?["jobs"] as? [[String: Any]] ?? []
            #expect(jobs.filter { $0["status"] as? String == "succeeded" }.compactMap { $0["job"] as? String }.sorted() == ["last-seen", "receipts", "reconcile", "unread"], "\(jobs)")
            let failed = jobs.first { $0["job"] as? String == "partitions" }
            let message = failed?["error"] as? String ?? ""
            #expect(message.contains("needs the rights of the tables' owner, \(owner)") && message.contains("GRANT \(owner) TO"), "\(message)")
            #expect(!message.contains("SQLSTATE") && !message.contains("\n"), "\(message)")
            #expect(r.stderr.split(separator: "\n").filter { $0.contains("partitions failed") }.count == 1, "\(r.stderr)")
            // With the documented grant, upkeep works.
            try conn.execute(SQL(unsafeRaw: "GRANT \(conn.quoteIdentifier(owner)) TO \(role)"))
            let again = try runCommand(TestPaths.binary, ["nightly", "--now", ahead] + url)
            #expect(again.status == 0 || again.status == 2 || again.status == 4, "\(again.stderr)")
            #expect(again.stdout.contains("\"job\" : \"partitions\"") && !again.stdout.contains("\"status\" : \"failed\""), "\(again.stdout)")
        }
    }

    @Test func theApplicationMayChangeOnlyWhatAnApplicationChanges() throws {
        try TestDatabase.migrated { conn, settings in
            try TestDatabase.seedConversation(conn)
            try PartitionManager(logger: TestDatabase.logger).ensure(conn)
            try conn.executeScript("""
                INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES (100, 1, now(), 1, 'text', 'hi');
                INSERT INTO chat.receipts (conversation_id, message_id, sent_at, recipient_id) SELECT 100, 1, sent_at, 2 FROM chat.messages WHERE message_id = 1;
                """)
            let role = "app_login_\(UUID().uuidString.prefix(8).lowercased())"
            try conn.execute(SQL(unsafeRaw: "CREATE ROLE \(role) LOGIN IN ROLE chatstore_app"))
            defer { _ = try? conn.execute(SQL(unsafeRaw: "DROP ROLE IF EXISTS \(role)")) }
            let app = try PostgresConnection(settings: ConnectionSettings(conninfo: settings.conninfo + " user=\(role)", source: settings.source),
                                             logger: TestDatabase.logger)
            #expect(try app.scalar(String.self, "SELECT current_user") == role)
            func refused(_ sql: String) -> Bool {
                do {
                    try app.transaction { c in try c.execute(SQL(unsafeRaw: sql)) }
                    return false
                } catch let e as PostgresError {
                    return e.sqlState == .insufficientPrivilege
                } catch { return false }
            }
            let forbidden = [
                "UPDATE chat.messages SET sent_at = '2020-01-01'",
                "UPDATE chat.messages SET sender_id = 2",
                "UPDATE chat.messages SET kind = 'system'",
                "UPDATE chat.receipts SET recipient_id = 3",
                "UPDATE chat.receipts SET sent_at = '2020-01-02'",
                "UPDATE chat.members SET joined_at = '2000-01-01'",
                "UPDATE chat.conversations SET kind = 'group'",
                "UPDATE chat.media SET size_bytes = 0",
                "UPDATE chat.presence_events SET state = 'online'",
                "UPDATE chat.send_dedup SET message_id = 0",
                "UPDATE chat.users SET user_id = user_id + 1000",
                "DELETE FROM chat.messages",
                "DELETE FROM chat.receipts",
                "TRUNCATE chat.messages",
                "LOCK TABLE chat.messages IN ACCESS EXCLUSIVE MODE",
                "LOCK TABLE chat.receipts IN SHARE MODE",
                "LOCK TABLE chat.members IN EXCLUSIVE MODE",
                "UPDATE chat.partition_config SET premake = 1",
                "UPDATE chat.unread_counts SET unread = 0",
                "INSERT INTO chat.dead_letters (conversation_id, message_id, recipient_id, sent_at, reason, attempts, first_failure_at, dead_at) VALUES (100, 1, 2, now(), 'expired', 0, now(), now())",
                "CREATE TABLE chat.x (a int)",
            ]
            for sql in forbidden {
                #expect(refused(sql), "allowed to the application: \(sql)")
            }
            // What an application does stays allowed.
            let allowed = [
                "INSERT INTO chat.messages (conversation_id, message_id, sent_at, sender_id, kind, body) VALUES (100, 2, now(), 2, 'text', 'yo')",
                "UPDATE chat.messages SET body = 'hi!', edited_at = now(), change_xid = DEFAULT WHERE message_id = 1",
                "UPDATE chat.messages SET deleted_at = now(), change_xid = DEFAULT WHERE message_id = 1",
                "UPDATE chat.receipts SET status = 3, delivered_at = now(), read_at = now(), updated_at = now(), change_xid = DEFAULT WHERE message_id = 1",
                "UPDATE chat.members SET left_at = now(), change_xid = DEFAULT WHERE conversation_id = 100 AND user_id = 2",
                "UPDATE chat.users SET display_name = 'New name' WHERE user_id = 1",
                "INSERT INTO chat.presence_events (user_id, occurred_at, state) VALUES (1, now(), 'online')",
                "SELECT * FROM chat.messages WHERE conversation_id = 100 AND message_id = 1 FOR UPDATE",
                "LOCK TABLE chat.messages IN ROW EXCLUSIVE MODE",
            ]
            for sql in allowed {
                #expect(throws: Never.self, "refused to the application: \(sql)") {
                    try app.transaction { c in try c.execute(SQL(unsafeRaw: sql)) }
                }
            }
        }
    }
}