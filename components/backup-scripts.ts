/**
 * The shell scripts the backup containers run, and the ones `npm run restore`
 * runs in containers on the stack's Docker host. Plain strings, free of
 * provider imports, so the restore command and the contract tests use the
 * very text the stack declares. Written for busybox `sh` (the Alpine-based
 * Postgres and restic images); the contract tests run them under busybox too.
 *
 * Secrets never travel in argv or in a container's environment: the backup
 * containers get them as files (Docker provider uploads, mode 0400) in
 * SECRETS_DIR, and the restore's containers read them from their stdin into a
 * tmpfs (see READ_STDIN_SECRETS).
 */

/** Where the secret files are, in every container that needs one. */
export const SECRETS_DIR = "/run/appstack/secrets";

/** Below the backup volume: the state the containers share (timestamps, the shipper's markers). */
export const STATE_DIR = ".appstack";

/** Below the backup volume: the scheduled dumps (the pre-deploy ones are at its top). */
export const SCHEDULED_DIR = "scheduled";

/**
 * The files under STATE_DIR that `status`, the health checks and the tests
 * read. `last-dump`: `<epoch> <file> <bytes> <seconds>` of the newest
 * scheduled dump. `last-offsite`: `<epoch> <snapshot> <file> <seconds>` of the
 * newest off-host copy, `<epoch>` being when its dump was written, so both
 * ages are the data's. `offsite-error`, `offsite-check-failed`: `<epoch> <why>`.
 */
export const STATE_FILES = {
  lastDump: "last-dump",
  lastOffsite: "last-offsite",
  offsiteError: "offsite-error",
  checkFailed: "offsite-check-failed",
} as const;

/** The restic host name of a stack's snapshots: every stack keeps its own group in a shared repository. */
export const offsiteHost = (stack: string) => `appstack-${stack}`;

/** The restic tag of appstack's snapshots. */
export const OFFSITE_TAG = "appstack";

/** The file names a secret gets in SECRETS_DIR: restic's password and repository, an sftp key, backend credentials under env/. */
export const SECRET_FILES = {
  password: "RESTIC_PASSWORD",
  repository: "RESTIC_REPOSITORY",
  sshKey: "ssh-key",
  knownHosts: "known_hosts",
  pgPassword: "PGPASSWORD",
  env: (name: string) => `env/${name}`,
} as const;

/**
 * restic's settings from the secret files: the password and the repository
 * by file (RESTIC_*_FILE), backend credentials exported from env/<NAME>, and
 * for sftp an ssh wrapper first on PATH that logs in with the key file and
 * accepts only the known host key, never asking (BatchMode: a wrong key fails
 * at once instead of waiting for a prompt).
 */
export const LOAD_RESTIC_SECRETS = [
  'export RESTIC_PASSWORD_FILE="$SECRETS_DIR/RESTIC_PASSWORD" RESTIC_REPOSITORY_FILE="$SECRETS_DIR/RESTIC_REPOSITORY"',
  'for f in "$SECRETS_DIR"/env/*; do if [ -f "$f" ]; then export "${f##*/}=$(cat "$f")"; fi; done',
  'if [ -f "$SECRETS_DIR/ssh-key" ]; then',
  '  ssh_dir="${TMPDIR:-/tmp}/appstack-ssh"',
  '  mkdir -p "$ssh_dir/bin"',
  "  printf 'Host *\\n  IdentityFile %s\\n  IdentitiesOnly yes\\n  UserKnownHostsFile %s\\n  StrictHostKeyChecking yes\\n  BatchMode yes\\n  ConnectTimeout 20\\n  ServerAliveInterval 15\\n  ServerAliveCountMax 4\\n' \"$SECRETS_DIR/ssh-key\" \"$SECRETS_DIR/known_hosts\" > \"$ssh_dir/config\"",
  "  printf '#!/bin/sh\\nexec %s -F %s \"$@\"\\n' \"$(command -v ssh)\" \"$ssh_dir/config\" > \"$ssh_dir/bin/ssh\"",
  '  chmod 755 "$ssh_dir/bin/ssh"',
  '  PATH="$ssh_dir/bin:$PATH"',
  "fi",
].join("\n");

/** Stops at once on SIGTERM (sh as PID 1 would ignore it), also while it sleeps. */
const STOP_TRAP = `trap 'log "stopping"; [ -n "\${!:-}" ] && kill "$!" 2>/dev/null; exit 0' TERM INT`;

/**
 * The scheduled dump, run by a long-lived container from the server's own
 * image: `pg_dump --format=custom` every BACKUP_INTERVAL_SECONDS into
 * scheduled/ as `<prefix>_<UTC time>.dump`. The password comes from a file,
 * never argv. A dump is written under a temporary name and renamed only when
 * pg_dump succeeded, so a failed dump (a full disk, a lost connection) never
 * looks like a backup and never replaces one; older dumps are pruned only
 * after a new one succeeded. Each success records its time, size and
 * duration in last-dump, which the health check reads. A restarted container
 * waits for the newest dump's age to reach the interval, so the rhythm holds.
 */
export const SCHEDULE_SCRIPT = [
  "set -u",
  'dir="$BACKUP_DIR/scheduled"; state="$BACKUP_DIR/.appstack"',
  'mkdir -p "$dir" "$state" || exit 1',
  'PGPASSWORD="$(cat "$SECRETS_DIR/PGPASSWORD")" || exit 1',
  "export PGPASSWORD",
  'log() { echo "appstack backup: $*"; }',
  STOP_TRAP,
  // A dump cut short by a stop or a crash leaves its temporary file: never a backup.
  'rm -f "$dir"/*.partial',
  "dump() {",
  "  started=$(date +%s)",
  '  name="${BACKUP_PREFIX}_$(date -u +%Y%m%dT%H%M%SZ).dump"',
  '  if ! err=$(pg_dump --format=custom --no-password --file="$dir/$name.partial" 2>&1); then',
  '    rm -f "$dir/$name.partial"',
  '    log "FAILED: $(printf \'%s\\n\' "$err" | tail -n 1); the previous dumps are kept"',
  "    return 1",
  "  fi",
  '  mv "$dir/$name.partial" "$dir/$name" || return 1',
  '  ended=$(date +%s); bytes=$(wc -c < "$dir/$name"); took=$((ended - started))',
  '  if printf \'%s %s %s %s\\n\' "$ended" "$name" "$bytes" "$took" > "$state/last-dump.tmp" && mv -f "$state/last-dump.tmp" "$state/last-dump"; then',
  '    log "wrote $name ($bytes bytes in $took s)"',
  "  else",
  '    log "wrote $name ($bytes bytes in $took s) but could not record it in $state/last-dump"',
  "  fi",
  '  ls -1t "$dir"/*.dump | tail -n +$((BACKUP_KEEP + 1)) | while read -r old; do rm -f -- "$old"; log "pruned ${old##*/}"; done',
  "}",
  "while :; do",
  "  last=0",
  '  [ -f "$state/last-dump" ] && last=$(cut -d " " -f 1 "$state/last-dump")',
  '  case "$last" in ""|*[!0-9]*) last=0 ;; esac',
  "  left=$((last + BACKUP_INTERVAL_SECONDS - $(date +%s)))",
  '  if [ "$left" -le 0 ]; then',
  "    dump && continue",
  "    left=$BACKUP_RETRY_SECONDS",
  "  fi",
  '  [ "$left" -gt 3600 ] && left=3600',
  '  sleep "$left" & wait $!',
  "done",
].join("\n");

/**
 * The off-host shipper, run by a long-lived container from the restic image
 * with the backup volume mounted. Once the repository opens (it is
 * initialised when there is none; a wrong password is said so, and retried,
 * never prompted for), every SHIP_POLL_SECONDS it ships each dump newer than
 * the last one shipped (the newest only, the first time) as one snapshot,
 * host `OFFSITE_HOST`, tag appstack. On their own schedules it applies the
 * retention (`forget --prune`, grouped by host: each dump has its own path)
 * and runs `restic check`; a check that finds errors marks the copy broken
 * until a later check passes. Each success is recorded in last-offsite.
 */
export const OFFSITE_SCRIPT = [
  "set -u",
  'state="$BACKUP_DIR/.appstack"',
  'mkdir -p "$state" || exit 1',
  'log() { echo "appstack offsite: $*"; }',
  LOAD_RESTIC_SECRETS,
  STOP_TRAP,
  // restic's own reason: its "Fatal:" line, else its last line (never the repository's location).
  "reason() { printf '%s\\n' \"$1\" | grep -m 1 '^Fatal:' || printf '%s\\n' \"$1\" | tail -n 1; }",
  'problem() { log "$1"; printf \'%s %s\\n\' "$(date +%s)" "$1" > "$state/offsite-error"; }',
  "open_repo() {",
  "  out=$(restic cat config 2>&1 >/dev/null) && return 0",
  '  case "$out" in',
  '    *"wrong password"*) problem "the repository password is wrong: restic cannot open the repository with the secure key backup.offsite.passwordSecret names"; return 1 ;;',
  '    *"Is there a repository at the following location"*|*"repository does not exist"*)',
  '      log "no repository at the configured location yet: restic init"',
  '      out=$(restic init 2>&1) && { log "repository initialised"; return 0; }',
  '      problem "restic init failed: $(reason "$out")"; return 1 ;;',
  '    *) problem "cannot open the repository: $(reason "$out")"; return 1 ;;',
  "  esac",
  "}",
  "pending() {",
  '  if [ -f "$state/offsite-shipped" ]; then',
  '    find "$BACKUP_DIR" -type f -name "*.dump" -newer "$state/offsite-shipped" | xargs -r ls -1tr',
  "  else",
  '    find "$BACKUP_DIR" -type f -name "*.dump" | xargs -r ls -1tr | tail -n 1',
  "  fi",
  "}",
  "ship() {",
  // The snapshot's time, and the copy's age everywhere, is the dump's: how old the data off the host is.
  '  started=$(date +%s); written=$(date -r "$1" +%s)',
  '  if ! out=$(TZ=UTC restic backup --host "$OFFSITE_HOST" --tag appstack --time "$(date -u -d "@$written" "+%Y-%m-%d %H:%M:%S")" "$1" 2>&1); then',
  '    problem "restic backup of ${1##*/} failed: $(reason "$out")"; return 1',
  "  fi",
  "  id=$(printf '%s\\n' \"$out\" | sed -n 's/^snapshot \\([0-9a-f]*\\) saved$/\\1/p')",
  "  took=$(($(date +%s) - started))",
  '  printf \'%s %s %s %s\\n\' "$written" "${id:-unknown}" "${1##*/}" "$took" > "$state/last-offsite.tmp" && mv -f "$state/last-offsite.tmp" "$state/last-offsite"',
  '  touch -r "$1" "$state/offsite-shipped"',
  '  rm -f "$state/offsite-error"',
  '  log "shipped ${1##*/} as snapshot ${id:-?} in $took s"',
  "}",
  // next-<job>: when a job is due. A first start waits one whole interval; a shortened schedule applies at once.
  "due() {",
  '  now=$(date +%s); next=$(cat "$state/next-$1" 2>/dev/null || echo)',
  '  case "$next" in ""|*[!0-9]*) next=$((now + $2)) ;; esac',
  '  [ "$next" -gt $((now + $2)) ] && next=$((now + $2))',
  '  echo "$next" > "$state/next-$1"',
  '  [ "$now" -ge "$next" ]',
  "}",
  'later() { echo $(( $(date +%s) + $2 )) > "$state/next-$1"; }',
  "prune() {",
  '  if out=$(restic forget --host "$OFFSITE_HOST" --tag appstack --group-by host --keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" --keep-monthly "$KEEP_MONTHLY" --prune 2>&1); then',
  '    later prune "$PRUNE_INTERVAL_SECONDS"; log "retention applied: $KEEP_DAILY daily, $KEEP_WEEKLY weekly, $KEEP_MONTHLY monthly"',
  "  else",
  '    later prune "$RETRY_SECONDS"; problem "restic forget --prune failed: $(reason "$out")"',
  "  fi",
  "}",
  "check() {",
  '  subset=""; [ "$CHECK_READ_DATA_PERCENT" -gt 0 ] && subset="--read-data-subset=$CHECK_READ_DATA_PERCENT%"',
  "  if out=$(restic check $subset 2>&1); then",
  '    later check "$CHECK_INTERVAL_SECONDS"; rm -f "$state/offsite-check-failed"; log "restic check: no errors"',
  '  elif printf \'%s\\n\' "$out" | grep -q "repository contains errors"; then',
  '    later check "$CHECK_INTERVAL_SECONDS"',
  "    printf '%s %s\\n' \"$(date +%s)\" \"$(printf '%s\\n' \"$out\" | grep -v '^\\[' | grep -v '^Fatal:' | tail -n 3 | tr '\\n' ' ')\" > \"$state/offsite-check-failed\"",
  '    log "restic check FOUND ERRORS in the repository: $(cut -d " " -f 2- "$state/offsite-check-failed")"',
  "  else",
  '    later check "$RETRY_SECONDS"; problem "restic check could not run: $(reason "$out")"',
  "  fi",
  "}",
  'until open_repo; do sleep "$RETRY_SECONDS" & wait $!; done',
  "while :; do",
  '  for f in $(pending); do ship "$f" || break; done',
  '  due prune "$PRUNE_INTERVAL_SECONDS" && prune',
  '  due check "$CHECK_INTERVAL_SECONDS" && check',
  '  sleep "$SHIP_POLL_SECONDS" & wait $!',
  "done",
].join("\n");

/** The scheduled-dump container's health check: the newest dump younger than `maxAgeSeconds`. */
export function scheduleHealthScript(backupDir: string, maxAgeSeconds: number): string {
  return [
    `f=${backupDir}/.appstack/last-dump`,
    '[ -f "$f" ] || { echo "no scheduled dump yet"; exit 1; }',
    'set -- $(cat "$f")',
    "age=$(( $(date +%s) - $1 ))",
    `echo "newest dump $2: $3 bytes in $4 s, $age s ago (at most ${maxAgeSeconds})"`,
    `[ "$age" -le ${maxAgeSeconds} ]`,
  ].join("\n");
}

/** The shipper's health check: no failed `restic check`, and the newest off-host copy younger than `maxAgeSeconds`. */
export function offsiteHealthScript(backupDir: string, maxAgeSeconds: number): string {
  return [
    `s=${backupDir}/.appstack`,
    '[ -f "$s/offsite-check-failed" ] && { echo "restic check found errors: $(cut -d " " -f 2- "$s/offsite-check-failed")"; exit 1; }',
    'why=""; [ -f "$s/offsite-error" ] && why="; last problem: $(cut -d " " -f 2- "$s/offsite-error")"',
    '[ -f "$s/last-offsite" ] || { echo "nothing shipped yet$why"; exit 1; }',
    'set -- $(cat "$s/last-offsite")',
    "age=$(( $(date +%s) - $1 ))",
    `echo "newest off-host copy $3 (snapshot $2), $age s ago (at most ${maxAgeSeconds})$why"`,
    `[ "$age" -le ${maxAgeSeconds} ]`,
  ].join("\n");
}

/**
 * For the restore's containers, which get no uploads: the secrets arrive on
 * stdin, one `<file> <base64 of the value>` line each, ended by an empty
 * line, and are written into SECRETS_DIR (a tmpfs the command mounts) with
 * mode 0600. `docker inspect` of those containers shows none of them.
 */
export const READ_STDIN_SECRETS = [
  "umask 077",
  'mkdir -p "$SECRETS_DIR/env"',
  'while read -r name value; do [ -n "$name" ] || break; case "$name" in *..*|/*) exit 2 ;; esac; printf \'%s\' "$value" | base64 -d > "$SECRETS_DIR/$name" || exit 2; done',
].join("\n");

/** The stdin that READ_STDIN_SECRETS reads, from secret files by name (SECRET_FILES). */
export function stdinSecrets(files: Record<string, string>): string {
  return Object.entries(files)
    .map(([name, value]) => `${name} ${Buffer.from(value, "utf8").toString("base64")}\n`)
    .join("") + "\n";
}

/**
 * What `npm run restore -- --offsite/--drill` runs in a restic container:
 * `snapshots` prints the stack's snapshots as JSON; `restore <id>` restores
 * one into RESTORE_DIR and prints the dump's path there.
 */
export const OFFSITE_FETCH_SCRIPT = [
  "set -eu",
  READ_STDIN_SECRETS,
  LOAD_RESTIC_SECRETS,
  'case "$1" in',
  '  snapshots) exec restic snapshots --json --host "$OFFSITE_HOST" --tag appstack ;;',
  '  restore) restic restore "$2" --target "$RESTORE_DIR" >&2; find "$RESTORE_DIR" -type f -name "*.dump" ;;',
  '  *) echo "unknown step $1" >&2; exit 2 ;;',
  "esac",
].join("\n");

/** Exact row counts of every table, one `<schema.table>\t<rows>` line each (statistics can be stale right after a restore). */
export const ROW_COUNTS_SQL =
  "SELECT n.nspname || '.' || c.relname, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text " +
  "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
  "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1";

/**
 * The drill's database side, in a container from the server's image on the
 * stack network: creates the throwaway database `$2` beside the live one,
 * restores the dump `$1` into it in one transaction, prints the check query's
 * (`$3`) value and every table's row count, and drops it on every way out.
 * It connects to the maintenance database `postgres` and to `$2` only: the
 * live database is never opened.
 */
export const DRILL_SCRIPT = [
  "set -eu",
  'dump="$1"; db="$2"; query="$3"',
  'case "$db" in appstack_drill_*) ;; *) echo "not a drill database: $db" >&2; exit 2 ;; esac',
  "q() { psql -X -q -v ON_ERROR_STOP=1 --no-password \"$@\"; }",
  'q -d postgres -c "CREATE DATABASE \\"$db\\""',
  'trap \'q -d postgres -c "DROP DATABASE IF EXISTS \\"$db\\"" && printf "DROPPED\\t%s\\n" "$db" || echo "appstack drill: could not drop $db; drop it by hand" >&2\' EXIT',
  'started=$(date +%s)',
  'pg_restore --no-owner --exit-on-error --single-transaction --dbname "$db" "$dump"',
  'printf "RESTORED\\t%s\\n" "$(( $(date +%s) - started ))"',
  'printf "CHECK\\t%s\\n" "$(q -At -d "$db" -c "$query")"',
  'q -At -F "$(printf \'\\t\')" -d "$db" -c "$ROW_COUNTS_SQL" | while IFS= read -r line; do printf "ROWS\\t%s\\n" "$line"; done',
].join("\n");
