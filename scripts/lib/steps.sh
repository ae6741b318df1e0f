# Shared by scripts/setup and scripts/install-pi (sourced, not run): each step says in one
# line what it is doing, and its tools' own output (apt, pip, cmake, npm) goes to a log
# file, which is named, with its last lines, when a step fails.
#
# Expects say() from the sourcing script, and STEP_LOG set to the log's path.

# step WHAT COMMAND...: run COMMAND with its output in $STEP_LOG; say WHAT first, and how
# long it took when that was long. On failure: the log's name and its last lines, and exit.
step() {
    local what="$1" t0=$SECONDS
    shift
    say "$what"
    printf '\n== %s  %s\n' "$(date '+%F %T')" "$what" >> "$STEP_LOG"
    quietly "$@"
    if (( SECONDS - t0 >= 20 )); then say "  done in $(( SECONDS - t0 )) s"; fi
    return 0
}

# quietly COMMAND...: run COMMAND with its output in $STEP_LOG; on failure, the log's name
# and its last lines, and exit.
quietly() {
    local status=0
    printf '+ %s\n' "$*" >> "$STEP_LOG"
    "$@" < /dev/null >> "$STEP_LOG" 2>&1 || status=$?
    if (( status )); then
        say "FAILED (exit $status): $*"
        say "the last lines of $STEP_LOG:"
        tail -n 15 "$STEP_LOG" | sed 's/^/    /' >&2
        say "the whole log is $STEP_LOG; fix what it says and run the same command again: it goes on where it stopped"
        exit 1
    fi
}

# step_log_start PATH: use PATH as the log, created if need be (kept when it exists, so a
# script called by another writes into the same log).
step_log_start() {
    STEP_LOG="$1"
    mkdir -p "$(dirname "$STEP_LOG")"
    : >> "$STEP_LOG"
}
