import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { AppStack } from "../components/app-stack";
import { ConfigError, intervalSeconds, loadConfig, offsiteBackend, type ConfigProblem } from "../config";
import { SECURE_PLACEHOLDER } from "../config/secure-placeholder";
import { waitForRegistrations } from "../ops/offline/offline-runtime";
import { validateStack } from "../ops/offline/validate";
import { PROJECT_ROOT } from "./helpers/declared-stack";
import { mockStack } from "./helpers/pulumi";

/**
 * The `backup` settings' bad input, as issue 13 names it: each a config error
 * that names the key and the command that fixes it, and nothing registered.
 */

const S3 = { secretEnv: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] };
const S3_SECRETS = { resticRepository: "s3:s3.amazonaws.com/acme-backups/app", resticPassword: "pw", AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: "key" };

async function problems(config: Record<string, unknown>, secrets: Record<string, string>): Promise<ConfigProblem[]> {
  const rt = await mockStack("production", { environment: "dev", ...config }, secrets);
  let error: unknown;
  try {
    new AppStack("appstack", { config: loadConfig(new pulumi.Config("appstack")), root: PROJECT_ROOT });
  } catch (err) {
    error = err;
  }
  await waitForRegistrations();
  expect(rt.resources, "registered resources").toEqual([]);
  expect(ConfigError.isInstance(error), String(error)).toBe(true);
  return (error as ConfigError).problems;
}

const only = (ps: ConfigProblem[]) => {
  expect(ps).toHaveLength(1);
  return ps[0];
};

describe("backup settings: bad input is a config error with its fix, and nothing is registered", () => {
  it("a schedule that is not an interval (cron syntax included)", async () => {
    for (const schedule of ["daily", "0 3 * * *", "4m", "31d"]) {
      const p = only(await problems({ backup: { schedule } }, {}));
      expect(p).toMatchObject({
        key: "appstack:backup.schedule",
        problem: "expected an interval from 5m to 30d: a whole number and m, h or d, e.g. 30m, 6h, 24h, 7d",
        fix: "pulumi config set -s production --path backup.schedule",
      });
    }
  });

  it("a retention of zero, locally or off the host", async () => {
    expect(only(await problems({ backup: { keep: 0 } }, {}))).toMatchObject({ key: "appstack:backup.keep", fix: "pulumi config set -s production --path backup.keep" });
    const p = only(await problems({ backup: { offsite: { ...S3, keepDaily: 0 } } }, S3_SECRETS));
    expect(p).toMatchObject({ key: "appstack:backup.offsite.keepDaily", fix: "pulumi config set -s production --path backup.offsite.keepDaily" });
    expect(p.problem).toMatch(/>=1/);
  });

  it("a repository restic cannot ship to off the host names the secure key and never echoes it", async () => {
    for (const repo of ["/srv/backups", "ftp://backup.example.com/app", "rclone:remote:app"]) {
      const p = only(await problems({ backup: { offsite: S3 } }, { ...S3_SECRETS, resticRepository: repo }));
      expect(p.key).toBe("appstack:resticRepository");
      expect(p.value).toBeUndefined();
      expect(p.problem).toContain("is not a restic repository appstack can ship to off the host (the S3, B2, sftp and REST backends; a local path is not off the host)");
      expect(p.fix).toBe("pulumi config set -s production --secret resticRepository");
      expect(JSON.stringify(p)).not.toContain(repo);
    }
    const http = only(await problems({ backup: { offsite: {} } }, { resticRepository: "rest:http://u:secretpw@backup.example.com/app", resticPassword: "pw" }));
    expect(http.problem).toContain("over plain http");
    expect(JSON.stringify(http)).not.toContain("secretpw");
  });

  it("a backend without its credentials: S3 keys, an sftp key and the server's host key", async () => {
    const s3 = only(await problems({ backup: { offsite: {} } }, { resticRepository: S3_SECRETS.resticRepository, resticPassword: "pw" }));
    expect(s3).toMatchObject({
      key: "appstack:backup.offsite.secretEnv",
      problem: "is required: an s3 repository needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: restic reads its credentials from these, each a top-level secure key",
      fix:
        "pulumi config set -s production --path 'backup.offsite.secretEnv[0]' AWS_ACCESS_KEY_ID && pulumi config set -s production --path 'backup.offsite.secretEnv[1]' AWS_SECRET_ACCESS_KEY" +
        " && pulumi config set -s production --secret AWS_ACCESS_KEY_ID && pulumi config set -s production --secret AWS_SECRET_ACCESS_KEY",
    });
    const sftp = only(await problems({ backup: { offsite: {} } }, { resticRepository: "sftp:backup@backup.example.com:/srv/restic", resticPassword: "pw" }));
    expect(sftp).toMatchObject({
      key: "appstack:backup.offsite.sshKeySecret",
      fix: "pulumi config set -s production --path backup.offsite.sshKeySecret resticSshKey && pulumi config set -s production --secret resticSshKey",
    });
    const hosts = only(await problems({ backup: { offsite: { sshKeySecret: "resticSshKey" } } }, { resticRepository: "sftp:backup@backup.example.com:/srv/restic", resticPassword: "pw", resticSshKey: "k" }));
    expect(hosts).toMatchObject({ key: "appstack:backup.offsite.knownHosts", fix: "pulumi config set -s production --path 'backup.offsite.knownHosts[0]'" });
  });

  it("a repository password stored in plain text", async () => {
    const { resticPassword: _plain, ...secrets } = S3_SECRETS;
    const p = only(await problems({ backup: { offsite: S3 }, resticPassword: "hunter2hunter2" }, secrets));
    expect(p).toMatchObject({
      key: "appstack:resticPassword",
      problem: "is stored in plain text in the stack file; backup.offsite (the restic repository's password) needs it as a secret",
      fix: "pulumi config set -s production --secret resticPassword",
    });
    expect(JSON.stringify(p)).not.toContain("hunter2");
  });

  it("backup settings on an external Postgres, which its provider backs up", async () => {
    const p = only(await problems({ postgres: { mode: "external" }, backup: { schedule: "6h" } }, { postgresUrl: "postgresql://u:p@db.example.com/app" }));
    expect(p).toMatchObject({ key: "appstack:backup", fix: "pulumi config rm -s production backup" });
    expect(p.problem).toContain("postgres is external");
  });

  it("restic's own settings in the backend's env are refused: the password and repository come from files", async () => {
    const p = only(await problems({ backup: { offsite: { ...S3, env: { RESTIC_PASSWORD: "x" } } } }, S3_SECRETS));
    expect(p).toMatchObject({ key: "appstack:backup.offsite.env.RESTIC_PASSWORD", fix: "pulumi config rm -s production --path backup.offsite.env.RESTIC_PASSWORD" });
  });
});

describe("backup settings that load", () => {
  it("a repository only the deploy can decrypt is not judged offline (validate and plan never decrypt)", async () => {
    await mockStack("production", { environment: "dev", backup: { offsite: {} } }, { resticRepository: SECURE_PLACEHOLDER, resticPassword: SECURE_PLACEHOLDER });
    const cfg = loadConfig(new pulumi.Config("appstack"));
    expect(cfg.backup?.offsite?.repositorySecret).toBe("resticRepository");
  });

  it("each backend restic supports off the host, with its credentials", async () => {
    for (const [repo, offsite, extra] of [
      ["s3:s3.amazonaws.com/acme/app", S3, { AWS_ACCESS_KEY_ID: "i", AWS_SECRET_ACCESS_KEY: "k" }],
      ["s3:https://minio.example.com:9000/acme/app", S3, { AWS_ACCESS_KEY_ID: "i", AWS_SECRET_ACCESS_KEY: "k" }],
      ["b2:acme-backups:app", { secretEnv: ["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"] }, { B2_ACCOUNT_ID: "i", B2_ACCOUNT_KEY: "k" }],
      ["sftp:backup@backup.example.com:/srv/restic", { sshKeySecret: "k", knownHosts: ["backup.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"] }, { k: "key" }],
      ["sftp://backup@backup.example.com:2222//srv/restic", { sshKeySecret: "k", knownHosts: ["[backup.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"] }, { k: "key" }],
      ["rest:https://u:p@backup.example.com:8000/app", {}, {}],
    ] as const) {
      await mockStack("production", { environment: "dev", backup: { offsite } }, { resticRepository: repo, resticPassword: "pw", ...extra });
      expect(loadConfig(new pulumi.Config("appstack")).backup?.offsite, repo).toBeDefined();
      expect(offsiteBackend(repo)).toEqual({ backend: repo.slice(0, repo.indexOf(":")) });
    }
  });

  it("validate says the repository's backend waits for the deploy to be checked (it never decrypts)", async () => {
    const text = await validateStack({ root: PROJECT_ROOT, stack: "production" });
    expect(text).toContain("note: resticRepository is a secret, which validate never decrypts: that it names a repository restic can ship to (S3, B2, sftp, REST) is checked by pulumi preview and pulumi up");
  });

  it("intervals in minutes, hours and days", () => {
    expect(["30m", "6h", "24h", "7d"].map(intervalSeconds)).toEqual([1800, 21_600, 86_400, 604_800]);
  });
});
