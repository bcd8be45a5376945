import type { OutputMap } from "@pulumi/pulumi/automation";
import * as tar from "tar-stream";
import { BACKUP_DIR } from "../../components/backup-names";
import { STATE_DIR, STATE_FILES } from "../../components/backup-scripts";
import { engineCall, engineMessage, EngineUnreachable, type DockerTarget, type EngineOptions } from "./docker-engine";

/**
 * How old a stack's newest backups are: the scheduled dump on the host, and
 * its off-host copy. Read from the timestamp files the backup containers
 * write (components/backup-scripts.ts) through the Docker Engine API
 * (`GET /containers/{name}/archive`, what `docker cp` uses), so it needs no
 * docker CLI and works over ssh:// like the provider. `status` and the
 * deploy's smoke check fail when either is older than twice the schedule.
 */

/** `1 h 5 min`, `3 min`, `40 s`: an age or a duration as a person reads it. */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The `backup` stack output (components/backup.ts BackupStatusOutput, as the engine returns it). */
export interface BackupOutput {
  schedule: string;
  maxAgeSeconds: number;
  scheduleContainer: string;
  offsiteContainer?: string;
}

export function backupFromOutputs(outputs: OutputMap): BackupOutput | undefined {
  const b = outputs.backup?.value as Partial<BackupOutput> | undefined;
  if (!b || typeof b.scheduleContainer !== "string" || typeof b.maxAgeSeconds !== "number" || typeof b.schedule !== "string") return undefined;
  return { schedule: b.schedule, maxAgeSeconds: b.maxAgeSeconds, scheduleContainer: b.scheduleContainer, offsiteContainer: typeof b.offsiteContainer === "string" ? b.offsiteContainer : undefined };
}

/** One backup's age, judged against twice the schedule. */
export interface BackupAge {
  kind: "local" | "off-host";
  /** When the newest one was taken (local) or shipped (off-host). */
  at?: Date;
  ageSeconds?: number;
  maxAgeSeconds: number;
  ok: boolean;
  /** The file, its size and duration; or why there is none. */
  detail: string;
}

/** The text of the one file a tar stream holds (the archive endpoint's answer for a file). */
async function tarFileText(archive: Buffer): Promise<string> {
  const extract = tar.extract();
  extract.end(archive);
  let text = "";
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const part of entry) parts.push(part as Buffer);
    if (entry.header.type === "file") text = Buffer.concat(parts).toString("utf8");
  }
  return text;
}

/** A state file of the backup volume, through a container that mounts it; undefined when there is none yet. */
async function stateFile(target: DockerTarget, container: string, name: string, opts: EngineOptions): Promise<string | undefined> {
  const file = `${BACKUP_DIR}/${STATE_DIR}/${name}`;
  const chunks: Buffer[] = [];
  const path = `/containers/${encodeURIComponent(container)}/archive?path=${encodeURIComponent(file)}`;
  const res = await engineCall(target, { method: "GET", path, onData: (d) => chunks.push(d) }, opts);
  if (res.status === 404) {
    if (/no such container/i.test(res.body)) throw new EngineUnreachable(`there is no container ${container} on ${target.host}`, "NOCONTAINER");
    return undefined;
  }
  if (res.status !== 200) throw new EngineUnreachable(`the Docker engine answered ${res.status} to reading ${file} in ${container}: ${engineMessage(res.body)}`, "HTTP");
  return tarFileText(Buffer.concat(chunks));
}

/** `<epoch> <a> <b> <c>` of last-dump / last-offsite. */
function fields(text: string | undefined): string[] | undefined {
  const f = text?.trim().split(/\s+/);
  return f && /^\d+$/.test(f[0]) ? f : undefined;
}

/** Judges the state files' contents; pure, so every case is tested. */
export function judgeBackups(
  backup: BackupOutput,
  files: { lastDump?: string; lastOffsite?: string; offsiteError?: string; checkFailed?: string },
  now: number,
): BackupAge[] {
  const age = (epoch: number) => Math.max(0, Math.round(now / 1000 - epoch));
  const result: BackupAge[] = [];
  const dump = fields(files.lastDump);
  if (dump) {
    const a = age(Number(dump[0]));
    result.push({ kind: "local", at: new Date(Number(dump[0]) * 1000), ageSeconds: a, maxAgeSeconds: backup.maxAgeSeconds, ok: a <= backup.maxAgeSeconds, detail: `${dump[1]}, ${dump[2]} bytes in ${dump[3]} s` });
  } else {
    result.push({ kind: "local", maxAgeSeconds: backup.maxAgeSeconds, ok: false, detail: `no scheduled dump yet (docker logs ${backup.scheduleContainer})` });
  }
  if (!backup.offsiteContainer) return result;
  const problem = [files.checkFailed && `restic check found errors: ${files.checkFailed.trim().replace(/^\d+ /, "")}`, files.offsiteError && `last problem: ${files.offsiteError.trim().replace(/^\d+ /, "")}`]
    .filter(Boolean)
    .join("; ");
  const shipped = fields(files.lastOffsite);
  if (shipped) {
    const a = age(Number(shipped[0]));
    result.push({
      kind: "off-host",
      at: new Date(Number(shipped[0]) * 1000),
      ageSeconds: a,
      maxAgeSeconds: backup.maxAgeSeconds,
      ok: a <= backup.maxAgeSeconds && !files.checkFailed,
      detail: `${shipped[2]} as snapshot ${shipped[1]}${problem ? `; ${problem}` : ""}`,
    });
  } else {
    result.push({ kind: "off-host", maxAgeSeconds: backup.maxAgeSeconds, ok: false, detail: `nothing shipped yet${problem ? `; ${problem}` : ""} (docker logs ${backup.offsiteContainer})` });
  }
  return result;
}

/** Reads and judges a stack's backups on its Docker host. */
export async function readBackupAges(target: DockerTarget, backup: BackupOutput, now: number, opts: EngineOptions = {}): Promise<BackupAge[]> {
  const read = (name: string) => stateFile(target, backup.scheduleContainer, name, opts);
  const [lastDump, lastOffsite, offsiteError, checkFailed] = await Promise.all([
    read(STATE_FILES.lastDump),
    backup.offsiteContainer ? read(STATE_FILES.lastOffsite) : undefined,
    backup.offsiteContainer ? read(STATE_FILES.offsiteError) : undefined,
    backup.offsiteContainer ? read(STATE_FILES.checkFailed) : undefined,
  ]);
  return judgeBackups(backup, { lastDump, lastOffsite, offsiteError, checkFailed }, now);
}

/** One row per backup: newest, age, the limit, what it is. */
export function renderBackupTable(ages: BackupAge[], schedule: string): string {
  const header = ["BACKUP", "NEWEST", "AGE", `LIMIT (2 x ${schedule})`, "DETAIL"];
  const rows = ages.map((a) => [
    `${a.ok ? "ok  " : "FAIL"} ${a.kind}`,
    a.at ? a.at.toISOString() : "-",
    a.ageSeconds !== undefined ? duration(a.ageSeconds) : "-",
    duration(a.maxAgeSeconds),
    a.detail,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** What a failed read says in the table's place: the backups' age is unknown, which fails the check too. */
export function unreadable(backup: BackupOutput, err: unknown): BackupAge[] {
  const why = err instanceof EngineUnreachable ? err.message : String((err as Error)?.message ?? err);
  return [{ kind: "local", maxAgeSeconds: backup.maxAgeSeconds, ok: false, detail: `could not be read: ${why}` }];
}
