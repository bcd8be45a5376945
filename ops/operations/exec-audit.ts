import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as tar from "tar-stream";
import { engineCall, engineMessage, EngineUnreachable, type DockerTarget, type EngineOptions } from "./docker-engine";

/**
 * The record of every `npm run exec`: one JSON file per run in the Docker
 * volume `appstack-<stack>-exec-audit` on the stack's own Docker host, so the
 * record sits where the command ran, whoever ran it and from wherever (a
 * laptop, CI), and outlives the container. It is written before the command
 * starts (a run that never finishes still has its record) and again with the
 * exit code when it ends. A run whose record cannot be written does not start.
 *
 * The files reach the volume through the Engine API alone: a container that
 * mounts the volume is created (never started) and the file is uploaded into
 * it (`PUT /containers/{id}/archive`), then the container is removed; reading
 * them is the same with `GET`. Anyone who may use the Docker host may also
 * change the volume: this is a record for the team, not tamper-proof evidence.
 */

export const AUDIT_DIR = "/appstack-exec-audit";

export const auditVolume = (stack: string) => `appstack-${stack}-exec-audit`;

/** Who ran a command: what this machine, git, Pulumi and CI say. */
export interface RanBy {
  /** The operating-system user and machine, `deploy@laptop`. */
  user: string;
  /** The identity the stack's backend knows (`pulumi whoami`). */
  pulumiUser?: string;
  /** git's `user.email` in this checkout. */
  gitEmail?: string;
  /** In GitHub Actions: the actor and the run. */
  ci?: { actor: string; run?: string };
}

export interface ExecRecord {
  /** The one-off container's name, unique per run. */
  container: string;
  stack: string;
  service: string;
  /** The command as run, secrets masked. */
  command: string[];
  /** The image reference the stack deployed, and the image the container ran. */
  image?: string;
  imageId: string;
  /** The replica whose image, env and network the one-off copied. */
  copiedFrom: string;
  ranBy: RanBy;
  startedAt: string;
  endedAt?: string;
  /** The command's exit code; absent while it runs (or when the run was lost). */
  exitCode?: number;
  /** What went wrong before the command could run. */
  error?: string;
}

export function whoRan(pulumiUser: string | undefined, env: NodeJS.ProcessEnv = process.env): RanBy {
  const git = spawnSync("git", ["config", "user.email"], { encoding: "utf8", timeout: 5000 });
  const gitEmail = git.status === 0 ? git.stdout.trim() || undefined : undefined;
  const run = env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` : undefined;
  return {
    user: `${os.userInfo().username}@${os.hostname()}`,
    ...(pulumiUser ? { pulumiUser } : {}),
    ...(gitEmail ? { gitEmail } : {}),
    ...(env.GITHUB_ACTOR ? { ci: { actor: env.GITHUB_ACTOR, ...(run ? { run } : {}) } } : {}),
  };
}

/** The file a run's record is kept in: sorts by start time. */
export const recordFile = (r: ExecRecord) => `${r.startedAt.replace(/[-:]/g, "")}-${r.container}.json`;

async function check(res: Promise<{ status: number; body: string }>, what: string): Promise<string> {
  const r = await res;
  if (r.status < 200 || r.status >= 300) throw new EngineUnreachable(`the Docker engine answered ${r.status} to ${what}: ${engineMessage(r.body)}`, "HTTP");
  return r.body;
}

/** Runs `use` with a created (never started) container of `image` that mounts the stack's audit volume. */
async function withAuditContainer<T>(target: DockerTarget, stack: string, image: string, use: (id: string) => Promise<T>, opts: EngineOptions): Promise<T> {
  const labels = { "appstack.project": "appstack", "appstack.stack": stack, "appstack.service": "exec-audit" };
  await check(engineCall(target, { method: "POST", path: "/volumes/create", body: { Name: auditVolume(stack), Labels: labels } }, opts), "creating the audit volume");
  const created = await check(
    engineCall(
      target,
      {
        method: "POST",
        path: "/containers/create",
        body: {
          Image: image,
          Entrypoint: ["/never-started"],
          Labels: { ...labels, "appstack.role": "oneoff" },
          NetworkDisabled: true,
          HostConfig: { Binds: [`${auditVolume(stack)}:${AUDIT_DIR}`] },
        },
      },
      opts,
    ),
    "creating the audit container",
  );
  const id = (JSON.parse(created) as { Id: string }).Id;
  try {
    return await use(id);
  } finally {
    await engineCall(target, { method: "DELETE", path: `/containers/${id}?force=1` }, opts).catch(() => undefined);
  }
}

async function packOne(name: string, content: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name, mode: 0o644, mtime: new Date() }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes (or rewrites) a run's record in the stack's audit volume. */
export async function writeExecRecord(target: DockerTarget, record: ExecRecord, opts: EngineOptions = {}): Promise<void> {
  const archive = await packOne(recordFile(record), `${JSON.stringify(record, null, 2)}\n`);
  await withAuditContainer(
    target,
    record.stack,
    record.imageId,
    (id) => check(engineCall(target, { method: "PUT", path: `/containers/${id}/archive?path=${encodeURIComponent(AUDIT_DIR)}`, body: archive }, opts), "writing the exec record"),
    opts,
  );
}

/** Every record in the stack's audit volume, oldest first; `image` is any image the host has (the container is never started). */
export async function readExecRecords(target: DockerTarget, stack: string, image: string, opts: EngineOptions = {}): Promise<ExecRecord[]> {
  const records: ExecRecord[] = [];
  await withAuditContainer(
    target,
    stack,
    image,
    async (id) => {
      const chunks: Buffer[] = [];
      const res = await engineCall(target, { method: "GET", path: `/containers/${id}/archive?path=${encodeURIComponent(AUDIT_DIR)}`, onData: (d) => chunks.push(d) }, opts);
      if (res.status !== 200) throw new EngineUnreachable(`the Docker engine answered ${res.status} to reading the exec records: ${engineMessage(res.body)}`, "HTTP");
      const extract = tar.extract();
      extract.end(Buffer.concat(chunks));
      for await (const entry of extract) {
        const parts: Buffer[] = [];
        for await (const part of entry) parts.push(part as Buffer);
        if (entry.header.type === "file" && entry.header.name.endsWith(".json")) records.push(JSON.parse(Buffer.concat(parts).toString("utf8")) as ExecRecord);
      }
    },
    opts,
  );
  return records.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}
