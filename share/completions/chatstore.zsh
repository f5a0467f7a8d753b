#compdef chatstore

__chatstore_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__chatstore_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __chatstore_complete "${completions[@]:0:-1}"
    fi
}

__chatstore_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_chatstore() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'local:Manage the private PostgreSQL cluster used by the demo and the tests.'
            'migrate:Apply, inspect and plan schema migrations.'
            'partitions:Premake, inspect and repair the time partitions of messages, receipts and presence.'
            'generate:Load a synthetic messaging workload, deterministically for a seed, with planted receipt anomalies.'
            'ingest:Load NDJSON event streams (plain or .zst) idempotently; bad lines go to the reject file.'
            'import:Import real chat exports: WhatsApp .txt or Telegram result.json.'
            'jobs:Run one nightly batch job (their SQL is in Queries/).'
            'nightly:Partition upkeep, reconcile, receipt audit, unread counts, last-seen and (when configured) retention, in that order, then a summary.'
            'archive:zstd-compressed archives of message partitions: export, verify, restore, list.'
            'export:Export everything one user sent or could read, or one conversation, into one zstd-compressed NDJSON file (live partitions and archives).'
            'report:Write the operator'\''s report: one self-contained HTML page with inline SVG charts and the numbers behind them.'
            'copy-in:Load a COPY-text file (plain or .zst) into a table in one transaction.'
            'copy-out:Write the rows of a query (COPY text format) to a zstd-compressed file, streamed.'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        local|migrate|partitions|generate|ingest|import|jobs|nightly|archive|export|report|copy-in|copy-out|help)
            "_chatstore_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_local() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'start:Initialize (if needed) and start the private cluster; create the chatstore database.'
            'stop:Stop the private cluster (fast shutdown).'
            'status:Show whether the private cluster is running. Exit 0 running, 1 otherwise.'
            'env:Print shell exports (PGHOST, PGPORT, PGUSER, PGDATABASE) for the private cluster.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        start|stop|status|env)
            "_chatstore_local_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_local_start() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Cluster directory (socket and data/).]:dir:'
        '--json[Write JSON to standard output.]'
        '--no-fsync[Turn off fsync and synchronous commit (for tests and benchmarks; unsafe on a crash).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_local_stop() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Cluster directory (socket and data/).]:dir:'
        '--json[Write JSON to standard output.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_local_status() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Cluster directory (socket and data/).]:dir:'
        '--json[Write JSON to standard output.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_local_env() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Cluster directory (socket and data/).]:dir:'
        '--json[Write JSON to standard output.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_migrate() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'apply:Apply pending migrations (the default).'
            'status:List applied and pending migrations with checksums. Exit 5 when the database does not match the files.'
            'plan:Print the SQL that `migrate` would run, without running it.'
            'baseline:Adopt a database whose schema was built without chatstore: record migrations up to a version as applied, without running them.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        apply|status|plan|baseline)
            "_chatstore_migrate_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_migrate_apply() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--migrations-dir[Read migrations from this directory instead of the ones built into the binary.]:dir:'
        '--to[Stop after this version.]:to:'
        '--lock-wait[How long to wait for another migrator'\''s lock before giving up (exit 3; a bare number is seconds). Example\: --lock-wait 10m]:lock-wait:'
        '--citus[After migrating, distribute the tables with Citus (requires the citus extension; idempotent). Only with the latest version, so not with --to. Example\: chatstore migrate --citus]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_migrate_status() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--migrations-dir[Read migrations from this directory instead of the ones built into the binary.]:dir:'
        '--check[Exit 5 when migrations are pending (or partly applied), so a pipeline can gate on it. Without it, pending migrations exit 0. Example\: chatstore migrate status --check]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_migrate_plan() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--migrations-dir[Read migrations from this directory instead of the ones built into the binary.]:dir:'
        '--to[Stop after this version.]:to:'
        '--citus[Also print the Citus distribution statements.]'
        '--offline[Plan against an empty database without connecting (every migration is pending).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_migrate_baseline() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--migrations-dir[Read migrations from this directory instead of the ones built into the binary.]:dir:'
        '--version[The version the database'\''s schema is at. Example\: --version 3]:version:'
        '--lock-wait[How long to wait for another migrator'\''s lock before giving up (exit 3). Example\: --lock-wait 10m]:lock-wait:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_partitions() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'ensure:Create missing partitions from the current interval through --ahead intervals. Idempotent; exit 4 if coverage is still low afterwards.'
            'status:Each table'\''s partitions with range and size, coverage ahead, rows in the default partition, last upkeep. Exit 4 when coverage is low or rows sit in a default partition.'
            'repair-default:Move rows out of the default partitions into proper partitions (created as needed), one transaction per partition.'
            'configure:Set a table'\''s partition granularity (day, week, month) or premake count; applies to partitions created afterwards.'
            'retire:Archive, verify, record, detach and drop message partitions (with their receipts) older than an age. Never drops without a verified archive; a killed run resumes.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        ensure|status|repair-default|configure|retire)
            "_chatstore_partitions_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_partitions_ensure() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout of each attempt to take a table lock\: the longest the application'\''s queries wait behind one (a busy lock is retried with back-off for up to a minute, then the step fails; a bare number is seconds). Example\: --lock-timeout 250ms]:lock-timeout:'
        '--lock-wait[How long to wait for another upkeep run (ensure, repair-default, retire, nightly'\''s partitions step) before giving up with exit 3. Example\: --lock-wait 10m]:lock-wait:'
        '--ahead[Intervals to premake after the current one (default\: each table'\''s premake setting).]:ahead:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_partitions_status() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout of each attempt to take a table lock\: the longest the application'\''s queries wait behind one (a busy lock is retried with back-off for up to a minute, then the step fails; a bare number is seconds). Example\: --lock-timeout 250ms]:lock-timeout:'
        '--lock-wait[How long to wait for another upkeep run (ensure, repair-default, retire, nightly'\''s partitions step) before giving up with exit 3. Example\: --lock-wait 10m]:lock-wait:'
        '--all[List every partition.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_partitions_repair-default() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout of each attempt to take a table lock\: the longest the application'\''s queries wait behind one (a busy lock is retried with back-off for up to a minute, then the step fails; a bare number is seconds). Example\: --lock-timeout 250ms]:lock-timeout:'
        '--lock-wait[How long to wait for another upkeep run (ensure, repair-default, retire, nightly'\''s partitions step) before giving up with exit 3. Example\: --lock-wait 10m]:lock-wait:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_partitions_configure() {
    local -i ret=1
    local -ar ___granularity=('day' 'week' 'month')
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--table[messages, receipts or presence_events.]:table:'
        '--granularity[day, week or month.]:granularity:{__chatstore_complete "${___granularity[@]}"}'
        '--premake[Intervals to premake ahead (1-400).]:premake:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_partitions_retire() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--older-than[Age with a unit (90d, 12w, 36h)\: partitions that ended before now minus this are retired. A bare number is refused (seconds would retire nearly everything). Example\: --older-than 90d]:older-than:'
        '--archive-dir[Where archives go.]:archive-dir:'
        '--keep-table[Detach but keep the tables (drop them yourself later).]'
        '--dry-run[Show what would be archived, detached and dropped, with row counts; change nothing. Example\: --dry-run --json]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_generate() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--users[Number of users.]:users:'
        '--days[Number of days of traffic.]:days:'
        '--seed[Random seed\: the same seed gives the same rows.]:seed:'
        '--start[First day, YYYY-MM-DD (UTC). Default\: DAYS days before today.]:start:'
        '--messages-per-user-day[Mean messages per user per day.]:messages-per-user-day:'
        '--anomaly-rate[Probability that a receipt carries one planted anomaly.]:anomaly-rate:'
        '--answer-key[Write the answer key (planted anomalies, expected unread totals) to this JSON file; - is standard output. Example\: --answer-key key.json]:answer-key:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_ingest() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '*:files:'
        '--reject-file[Write each rejected line here, in file order, as file\:line<TAB>reason<TAB>line; - is standard output. Example\: --reject-file rejects.tsv]:reject-file:'
        '--strict[Abort at the first bad line; commit nothing.]'
        '--batch-size[Lines per committed batch.]:batch-size:'
        '--workers[Connections applying each batch in parallel; a conversation'\''s events always go to the same one (--strict uses one).]:workers:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_import() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'whatsapp:Import a WhatsApp "Export chat" .txt file (Android or iOS).'
            'telegram:Import a Telegram Desktop result.json (one chat or a whole account).'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        whatsapp|telegram)
            "_chatstore_import_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_import_whatsapp() {
    local -i ret=1
    local -ar ___date_order=('dmy' 'mdy' 'ymd')
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        ':file:'
        '--date-order[Date order in the headers\: dmy, mdy or ymd (default\: decided from the file, day first when ambiguous).]:date-order:{__chatstore_complete "${___date_order[@]}"}'
        '--timezone[The phone'\''s time zone (exports have local times), e.g. Europe/Berlin.]:timezone:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_import_telegram() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        ':file:'
        '--timezone[Time zone of `date` fields in old exports without date_unixtime.]:timezone:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_jobs() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'unread:Maintain chat.unread_counts: incremental from the last watermark; --full, --verify (exit 2 on drift), --repair.'
            'receipts:Audit receipts category by category (exit 2 when anything is found); --repair fixes the safe categories and records each change.'
            'last-seen:Roll presence and activity into last-seen times, daily activity and the daily summary; drop raw presence past its retention. Idempotent per day.'
            'reconcile:Schedule redelivery of undelivered messages with exponential backoff; dead-letter expired and poison ones.'
            'redrive:Move dead letters back to delivery, oldest first, at most --limit per run.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        unread|receipts|last-seen|reconcile|redrive)
            "_chatstore_jobs_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_jobs_unread() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--full[Recompute every row from scratch.]'
        '--verify[Compare stored counts with a full recompute and report drift; change nothing.]'
        '--repair[Like --verify, then fix the drifted rows.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_jobs_receipts() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--repair[Fix the fixable categories in one transaction, recording every change in chat.receipt_repairs.]'
        '--from[Audit the messages sent from this date (default\: every message touched by a row written since the last run, in commit order; all on the first run). A run with --from/--to leaves the nightly'\''s starting point alone. Example\: --from 2026-11-01]:from:'
        '--to[... until this date (default with --from\: now). Example\: --to 2026-12-01]:to:'
        '--jobs[Audit a first run or a --from/--to window on up to 2 connections at once, the later half of its days on the second (it reads the same snapshot); 1 (the default) audits on one. Example\: --jobs 2]:jobs:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_jobs_last-seen() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--from[First day (YYYY-MM-DD; default\: the day before the last run).]:from:'
        '--to[Day after the last day (default\: tomorrow).]:to:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_jobs_reconcile() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--dry-run[Classify and report; change nothing.]'
        '--grace[How long a message stays undelivered before it needs reconciling (a bare number is seconds). Example\: --grace 10m]:grace:'
        '--max-age[Age after which an undelivered message expires (dead letter '\''expired'\''). Example\: --max-age 14d]:max-age:'
        '--max-attempts[Failed attempts after which a delivery is poison. Example\: --max-attempts 8]:max-attempts:'
        '--backoff-base[Backoff base\: attempt n is scheduled base × n⁴ after now. Example\: --backoff-base 30s]:backoff-base:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_jobs_redrive() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--dry-run[Show what would be redriven; change nothing.]'
        '--limit[At most this many dead letters (the rate limit per run).]:limit:'
        '--reason[Only dead letters with this reason\: expired or poison.]:reason:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_nightly() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--lock-timeout[lock_timeout for the job'\''s statements (500ms, 5s, 1m; a bare number is seconds). Example\: --lock-timeout 2s]:lock-timeout:'
        '--statement-timeout[statement_timeout for each statement (30s, 10m, 2h; a bare number is seconds). Example\: --statement-timeout 30m]:statement-timeout:'
        '--lock-wait[How long to wait for the job'\''s lock while another run holds it, then exit 3 naming the holder (a run killed a moment ago lets go within a second or two; a bare number is seconds). Example\: --lock-wait 1m]:lock-wait:'
        '--repair-receipts[Repair the fixable receipt anomalies (recorded in chat.receipt_repairs).]'
        '--archive-dir[Archive directory for retention\: when chat.partition_config has a retention for messages, partitions older than it are archived, verified and dropped.]:archive-dir:'
        '--report[After the run, write the operator'\''s HTML report (14 days) to this file.]:report:'
        '--metrics-file[Write the summary in Prometheus text format to this file (atomically), for node_exporter'\''s textfile collector.]:metrics-file:'
        '--jobs[Run up to N of reconcile, the receipt audit, unread and last-seen at once, each on its own connection (default 1\: one after another). Each statement uses one server core, so on a server with a spare core --jobs 2 shortens a long night; with --repair-receipts the other jobs wait for the repairs. Example\: --jobs 2]:jobs:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_archive() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'export:Archive message partitions (with their receipts and media) into DIR/<partition>/, verify them, and record them in chat.archives. The database is not changed otherwise.'
            'verify:Check an archive: files against the manifest (sha256, size), zstd checksums, row counts, media items, and the database while the partition exists. Exit 1 on any damage.'
            'restore:Load an archive back (re-creating its partition range if needed). Verifies first; idempotent.'
            'list:What the archive ledger (chat.archives) knows.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        export|verify|restore|list)
            "_chatstore_archive_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_chatstore_archive_export() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--partition[A messages partition (e.g. messages_p20261122).]:partition:'
        '--before[Every messages partition that ends on or before this date.]:before:'
        '--archive-dir[Where archives go (the same flag as retire'\''s and nightly'\''s). Example\: --archive-dir /srv/archive]:dir:'
        '--no-verify[Skip verification and the ledger (for benchmarks; `archive verify` can check later).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_archive_verify() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        ':path:'
        '--offline[Do not compare with the database.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_archive_restore() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        ':path:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_archive_list() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_export() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--user[The user whose data to export.]:user:'
        '--conversation[The conversation to export.]:conversation:'
        '--from[Only messages sent from this time (YYYY-MM-DD or ISO).]:from:'
        '--to[Only messages sent before this time.]:to:'
        '--out[Output file (.ndjson.zst); written under a temporary name and renamed when complete; - writes the zstd stream to standard output. Example\: --out - | zstd -dc | jq .]:out:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_report() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--days[Days to cover, ending today (UTC).]:days:'
        '--out[The HTML file to write (atomically); - is standard output. Example\: --out /var/www/chatstore.html]:out:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_copy-in() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--table[Target table (schema.table allowed).]:table:'
        '--columns[Columns in file order (default\: all, in table order).]:columns:'
        ':file:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_copy-out() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[libpq connection string or postgres\:// URL (overrides DATABASE_URL and PG* variables). A password in it is hidden from ps at startup; to keep it out of the arguments entirely, use .pgpass/PGPASSFILE, DATABASE_URL or --database-url-file. Example\: --database-url postgres\://batch@db.internal/chat]:url:'
        '--database-url-file[Read the connection string from this file (its first line; - is standard input), so a password never appears in the process arguments. Example\: --database-url-file /run/secrets/chat-db]:file:'
        '--json[Write machine-readable JSON to standard output instead of text.]'
        '(-q --quiet)'{-q,--quiet}'[Only errors on standard error (no progress).]'
        '(-v --verbose)'{-v,--verbose}'[Debug logging on standard error (server notices, statements).]'
        '--query[The query to export (or use --table).]:query:'
        '--table[A table to export whole.]:table:'
        '--out[Output file; written under a temporary name and renamed when complete; - is standard output. Example\: --out - --no-compress | head]:out:'
        '--level[zstd level (1-19).]:level:'
        '--workers[zstd worker threads (0\: compress in the receiving thread). One worker overlaps compression with receiving; more rarely helps on 2 cores.]:workers:'
        '--job-size[zstd job size in bytes for workers (smaller\: less memory).]:job-size:'
        '--no-compress[Write plain COPY text, uncompressed.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_chatstore_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _chatstore ]]; then
    _chatstore "${@}"
else
    compdef _chatstore chatstore
fi
