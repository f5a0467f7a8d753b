#!/bin/bash

__chatstore_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__chatstore_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__chatstore_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__chatstore_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_chatstore() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(--version -h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    local|migrate|partitions|generate|ingest|import|jobs|nightly|archive|export|report|copy-in|copy-out|help)
        # Offer subcommand argument completions
        "_chatstore_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'local migrate partitions generate ingest import jobs nightly archive export report copy-in copy-out help' -- "${cur}"))
        ;;
    esac
}

_chatstore_local() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    start|stop|status|env)
        # Offer subcommand argument completions
        "_chatstore_local_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'start stop status env' -- "${cur}"))
        ;;
    esac
}

_chatstore_local_start() {
    repeating_flags=()
    non_repeating_flags=(--json --no-fsync --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    esac
}

_chatstore_local_stop() {
    repeating_flags=()
    non_repeating_flags=(--json --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    esac
}

_chatstore_local_status() {
    repeating_flags=()
    non_repeating_flags=(--json --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    esac
}

_chatstore_local_env() {
    repeating_flags=()
    non_repeating_flags=(--json --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    esac
}

_chatstore_migrate() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    apply|status|plan|baseline)
        # Offer subcommand argument completions
        "_chatstore_migrate_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'apply status plan baseline' -- "${cur}"))
        ;;
    esac
}

_chatstore_migrate_apply() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --citus --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --migrations-dir --to --lock-wait)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--migrations-dir')
        return
        ;;
    '--to')
        return
        ;;
    '--lock-wait')
        return
        ;;
    esac
}

_chatstore_migrate_status() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --check --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --migrations-dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--migrations-dir')
        return
        ;;
    esac
}

_chatstore_migrate_plan() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --citus --offline --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --migrations-dir --to)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--migrations-dir')
        return
        ;;
    '--to')
        return
        ;;
    esac
}

_chatstore_migrate_baseline() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --migrations-dir --version --lock-wait)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--migrations-dir')
        return
        ;;
    '--version')
        return
        ;;
    '--lock-wait')
        return
        ;;
    esac
}

_chatstore_partitions() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    ensure|status|repair-default|configure|retire)
        # Offer subcommand argument completions
        "_chatstore_partitions_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'ensure status repair-default configure retire' -- "${cur}"))
        ;;
    esac
}

_chatstore_partitions_ensure() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --lock-wait --ahead)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--ahead')
        return
        ;;
    esac
}

_chatstore_partitions_status() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --all --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --lock-wait)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    esac
}

_chatstore_partitions_repair-default() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --lock-wait)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    esac
}

_chatstore_partitions_configure() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --table --granularity --premake)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--table')
        return
        ;;
    '--granularity')
        __chatstore_add_completions -W 'day'$'\n''week'$'\n''month'
        return
        ;;
    '--premake')
        return
        ;;
    esac
}

_chatstore_partitions_retire() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --keep-table --dry-run --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --older-than --archive-dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--older-than')
        return
        ;;
    '--archive-dir')
        return
        ;;
    esac
}

_chatstore_generate() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --users --days --seed --start --messages-per-user-day --anomaly-rate --answer-key)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--users')
        return
        ;;
    '--days')
        return
        ;;
    '--seed')
        return
        ;;
    '--start')
        return
        ;;
    '--messages-per-user-day')
        return
        ;;
    '--anomaly-rate')
        return
        ;;
    '--answer-key')
        return
        ;;
    esac
}

_chatstore_ingest() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --strict --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --reject-file --batch-size --workers)
    __chatstore_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--reject-file')
        return
        ;;
    '--batch-size')
        return
        ;;
    '--workers')
        return
        ;;
    esac
}

_chatstore_import() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    whatsapp|telegram)
        # Offer subcommand argument completions
        "_chatstore_import_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'whatsapp telegram' -- "${cur}"))
        ;;
    esac
}

_chatstore_import_whatsapp() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --date-order --timezone)
    __chatstore_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--date-order')
        __chatstore_add_completions -W 'dmy'$'\n''mdy'$'\n''ymd'
        return
        ;;
    '--timezone')
        return
        ;;
    esac
}

_chatstore_import_telegram() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --timezone)
    __chatstore_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--timezone')
        return
        ;;
    esac
}

_chatstore_jobs() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    unread|receipts|last-seen|reconcile|redrive)
        # Offer subcommand argument completions
        "_chatstore_jobs_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'unread receipts last-seen reconcile redrive' -- "${cur}"))
        ;;
    esac
}

_chatstore_jobs_unread() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --full --verify --repair --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    esac
}

_chatstore_jobs_receipts() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --repair --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait --from --to --jobs)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--from')
        return
        ;;
    '--to')
        return
        ;;
    '--jobs')
        return
        ;;
    esac
}

_chatstore_jobs_last-seen() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait --from --to)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--from')
        return
        ;;
    '--to')
        return
        ;;
    esac
}

_chatstore_jobs_reconcile() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --dry-run --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait --grace --max-age --max-attempts --backoff-base)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--grace')
        return
        ;;
    '--max-age')
        return
        ;;
    '--max-attempts')
        return
        ;;
    '--backoff-base')
        return
        ;;
    esac
}

_chatstore_jobs_redrive() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --dry-run --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait --limit --reason)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--limit')
        return
        ;;
    '--reason')
        return
        ;;
    esac
}

_chatstore_nightly() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --repair-receipts --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --lock-timeout --statement-timeout --lock-wait --archive-dir --report --metrics-file --jobs)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--statement-timeout')
        return
        ;;
    '--lock-wait')
        return
        ;;
    '--archive-dir')
        return
        ;;
    '--report')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--jobs')
        return
        ;;
    esac
}

_chatstore_archive() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    export|verify|restore|list)
        # Offer subcommand argument completions
        "_chatstore_archive_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'export verify restore list' -- "${cur}"))
        ;;
    esac
}

_chatstore_archive_export() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --no-verify --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --partition --before --archive-dir)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--partition')
        return
        ;;
    '--before')
        return
        ;;
    '--archive-dir')
        return
        ;;
    esac
}

_chatstore_archive_verify() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --offline --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file)
    __chatstore_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    esac
}

_chatstore_archive_restore() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file)
    __chatstore_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    esac
}

_chatstore_archive_list() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    esac
}

_chatstore_export() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --user --conversation --from --to --out)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--user')
        return
        ;;
    '--conversation')
        return
        ;;
    '--from')
        return
        ;;
    '--to')
        return
        ;;
    '--out')
        return
        ;;
    esac
}

_chatstore_report() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --days --out)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--days')
        return
        ;;
    '--out')
        return
        ;;
    esac
}

_chatstore_copy-in() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --version -h --help)
    repeating_options=(--columns)
    non_repeating_options=(--database-url --database-url-file --table)
    __chatstore_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--table')
        return
        ;;
    '--columns')
        return
        ;;
    esac
}

_chatstore_copy-out() {
    repeating_flags=()
    non_repeating_flags=(--json -q --quiet -v --verbose --no-compress --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --database-url-file --query --table --out --level --workers --job-size)
    __chatstore_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--database-url-file')
        return
        ;;
    '--query')
        return
        ;;
    '--table')
        return
        ;;
    '--out')
        return
        ;;
    '--level')
        return
        ;;
    '--workers')
        return
        ;;
    '--job-size')
        return
        ;;
    esac
}

_chatstore_help() {
    repeating_flags=()
    non_repeating_flags=(--version)
    repeating_options=()
    non_repeating_options=()
    __chatstore_offer_flags_options -1
}

complete -o filenames -F _chatstore chatstore
