import { z } from "zod";
import type { FixStep } from "./fix";
import type { ParsedAppConfig, SchemaIssue } from "./schema";

/**
 * The rules of the `backup` section: scheduled dumps of a Postgres that
 * appstack runs, and their encrypted copies off the host (restic). The
 * settings themselves are defined in the schema; what they mean for the
 * containers is in components/backup.ts.
 */

/** Seconds per unit of an interval. */
const UNITS = { m: 60, h: 3600, d: 86_400 } as const;
const INTERVAL = /^([1-9]\d{0,4})([mhd])$/;

/** An interval's length in seconds: `30m` 1800, `24h` 86400, `7d` 604800. */
export function intervalSeconds(text: string): number {
  const m = INTERVAL.exec(text);
  if (!m) throw new Error(`not an interval: "${text}"`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}

/**
 * How often something runs, as a whole number and a unit: `30m`, `6h`,
 * `24h`, `7d`. An interval rather than cron syntax: "twice the schedule"
 * (when a backup counts as overdue) is one number, and a restarted
 * container keeps the rhythm by waiting for the newest dump's age to reach it.
 */
export function interval(min: string, max: string) {
  const [lo, hi] = [intervalSeconds(min), intervalSeconds(max)];
  const message = `expected an interval from ${min} to ${max}: a whole number and m, h or d, e.g. 30m, 6h, 24h, 7d`;
  return z
    .string()
    .regex(INTERVAL, { message })
    .refine((s) => !INTERVAL.test(s) || (intervalSeconds(s) >= lo && intervalSeconds(s) <= hi), { message });
}

/** The restic image that ships the dumps: a version tag with major.minor (see docs/backups.md for why not a digest). */
export const RESTIC_IMAGE = "restic/restic:0.19.1";

/**
 * The restic backends a repository may use for the off-host copy, with the
 * credentials each needs as environment variables (restic reads them from
 * there; appstack gives them from secure keys named in `backup.offsite.secretEnv`).
 * A local path is not off the host, so it is not one of them.
 */
export const OFFSITE_BACKENDS = {
  s3: { example: "s3:s3.amazonaws.com/my-bucket/appstack", env: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], pattern: /^s3:(?:https?:\/\/)?[^\s/]+\/[^\s]+$/ },
  b2: { example: "b2:my-bucket:appstack", env: ["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"], pattern: /^b2:[A-Za-z0-9-]+(?::\S*)?$/ },
  sftp: { example: "sftp:backup@backup.example.com:/srv/restic/appstack", env: [], pattern: /^sftp:(?:\/\/[^\s/]+\/\S*|[^\s/:]+:\S*)$/ },
  rest: { example: "rest:https://user:password@backup.example.com:8000/appstack", env: [], pattern: /^rest:https:\/\/\S+$/ },
} as const;

export type OffsiteBackend = keyof typeof OFFSITE_BACKENDS;

/** The backend of a restic repository string, or why it is not one appstack ships to. */
export function offsiteBackend(repository: string): { backend: OffsiteBackend } | { problem: string } {
  const scheme = /^([a-z0-9]+):/.exec(repository)?.[1];
  const expected = `expected one of ${Object.values(OFFSITE_BACKENDS).map((b) => b.example).join(", ")}`;
  if (!scheme || !(scheme in OFFSITE_BACKENDS)) {
    return { problem: `is not a restic repository appstack can ship to off the host (the S3, B2, sftp and REST backends; a local path is not off the host); ${expected}` };
  }
  const backend = scheme as OffsiteBackend;
  if (backend === "rest" && repository.startsWith("rest:http:")) {
    return { problem: "is a REST repository over plain http: its credentials would cross the network readable; use rest:https://..." };
  }
  if (!OFFSITE_BACKENDS[backend].pattern.test(repository)) {
    return { problem: `is not a valid ${backend} repository for restic; expected e.g. ${OFFSITE_BACKENDS[backend].example}` };
  }
  return { backend };
}

/**
 * Env names the off-host container sets itself: restic reads the password
 * and repository from the files these name, never from the environment.
 */
export const OFFSITE_WIRED_ENV = [
  "RESTIC_PASSWORD",
  "RESTIC_PASSWORD_FILE",
  "RESTIC_PASSWORD_COMMAND",
  "RESTIC_REPOSITORY",
  "RESTIC_REPOSITORY_FILE",
  "RESTIC_CACHE_DIR",
] as const;

type Sections = Partial<ParsedAppConfig>;
type AddIssue = (issue: SchemaIssue) => void;

function issue(path: (string | number)[], message: string, fix: FixStep[], note?: string): SchemaIssue {
  return { code: "custom", path, message, params: { fix, note } };
}

/**
 * What the schema alone cannot say about `backup`. `secretValue` reads a
 * secure key's value where the engine decrypted it (`pulumi preview`/`up`);
 * offline (`validate`, `plan`) nothing is decrypted, and the checks of the
 * repository's value wait for the deploy.
 */
export function backupRules(
  cfg: Sections,
  present: ReadonlySet<string>,
  secretValue: (key: string) => string | undefined,
  addIssue: AddIssue,
): void {
  if (cfg.postgres?.mode === "external" && present.has("backup")) {
    addIssue(
      issue(
        ["backup"],
        "has no effect: postgres is external (postgres.mode = external), and a managed database is backed up by its provider (point-in-time recovery); appstack dumps only a Postgres it runs",
        [{ rm: ["backup"] }],
      ),
    );
    return;
  }
  const offsite = cfg.backup?.offsite;
  if (!offsite) return;
  const at = (...p: (string | number)[]) => ["backup", "offsite", ...p];

  for (const name of [...Object.keys(offsite.env), ...offsite.secretEnv]) {
    if (!(OFFSITE_WIRED_ENV as readonly string[]).includes(name)) continue;
    const inEnv = name in offsite.env;
    const kept = offsite.secretEnv.filter((n) => !(OFFSITE_WIRED_ENV as readonly string[]).includes(n));
    addIssue(
      issue(
        inEnv ? at("env", name) : at("secretEnv", offsite.secretEnv.indexOf(name)),
        `${name} is set by appstack: restic reads the password and the repository from files made from the secure keys that backup.offsite.passwordSecret and repositorySecret name`,
        inEnv ? [{ rm: at("env", name) }] : [{ rm: at("secretEnv") }, ...kept.map((n, i): FixStep => ({ set: at("secretEnv", i), value: n }))],
      ),
    );
  }
  for (const name of offsite.secretEnv) {
    if (name in offsite.env) {
      addIssue(issue(at("env", name), `${name} is listed in backup.offsite.secretEnv too; a secret is never also a plain setting`, [{ rm: at("env", name) }]));
    }
  }
  if (offsite.sshKeySecret && !offsite.knownHosts?.length) {
    addIssue(
      issue(
        at("knownHosts"),
        "is required with sshKeySecret: the sftp server's host key, as a known_hosts line, so the copy goes to that server and no other",
        [{ set: at("knownHosts", 0) }],
        "Pulumi asks for the line, e.g. the output of: ssh-keyscan -t ed25519 backup.example.com",
      ),
    );
  }

  const repository = secretValue(offsite.repositorySecret);
  if (repository === undefined) return;
  const found = offsiteBackend(repository.trim());
  if ("problem" in found) {
    addIssue(
      issue([offsite.repositorySecret], found.problem, [{ set: [offsite.repositorySecret], secret: true }], "Pulumi asks for the repository without echoing it, and stores it encrypted"),
    );
    return;
  }
  const { backend } = found;
  if (backend === "sftp" && !offsite.sshKeySecret) {
    addIssue(
      issue(
        at("sshKeySecret"),
        "is required for an sftp repository: the name of the secure key that holds the ssh private key the copy logs in with",
        [{ set: at("sshKeySecret"), value: "resticSshKey" }, { set: ["resticSshKey"], secret: true }],
        "the second command asks for the private key (a key made for the backups only, e.g. ssh-keygen -t ed25519 -N '' -f restic-key); also set backup.offsite.knownHosts",
      ),
    );
  }
  if (backend !== "sftp" && (offsite.sshKeySecret || offsite.knownHosts)) {
    const key = offsite.sshKeySecret ? "sshKeySecret" : "knownHosts";
    addIssue(issue(at(key), `is for an sftp repository; this one is ${backend}`, [{ rm: at(key) }]));
  }
  const missing = OFFSITE_BACKENDS[backend].env.filter((n) => !offsite.secretEnv.includes(n));
  if (missing.length > 0) {
    const start = offsite.secretEnv.length;
    addIssue(
      issue(
        at("secretEnv"),
        `an ${backend} repository needs ${missing.join(" and ")}: restic reads its credentials from these, each a top-level secure key`,
        [...missing.map((n, i): FixStep => ({ set: at("secretEnv", start + i), value: n })), ...missing.map((n): FixStep => ({ set: [n], secret: true }))],
        "the last commands ask for each credential without echoing it",
      ),
    );
  }
}
