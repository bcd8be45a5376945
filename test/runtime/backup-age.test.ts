import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineUnreachable } from "../../ops/operations/docker-engine";
import { readBackupAges, type BackupOutput } from "../../ops/operations/backup-age";
import { busyboxImage, docker } from "./busybox-image";

/**
 * `status` and the smoke check read the backups' timestamp files through the
 * Docker Engine API's archive endpoint (what `docker cp` uses): here against
 * this machine's engine, with a container that mounts a volume at /backups
 * the way the scheduled-dump container does.
 */

const LOCAL = { host: "unix:///var/run/docker.sock" };
const prefix = `appstack-rt${randomBytes(4).toString("hex")}`;
// A whole second, so an age is exactly the seconds subtracted below.
const now = Math.floor(Date.now() / 1000) * 1000;
const epoch = (secondsAgo: number) => Math.floor(now / 1000) - secondsAgo;
let image: string;
let made = 0;

/**
 * A running container that mounts a fresh volume at /backups holding these
 * state files (name -> content), put there with `docker cp`; the `backup`
 * output that names it.
 */
function scheduleContainer(files: Record<string, string>): BackupOutput {
  const name = `${prefix}-${++made}-backup-schedule`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-state-"));
  try {
    fs.mkdirSync(path.join(dir, ".appstack"));
    for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, ".appstack", file), content);
    for (const args of [
      ["volume", "create", name],
      ["create", "--name", name, "-v", `${name}:/backups`, image, "sleep", "600"],
      ["cp", `${dir}/.`, `${name}:/backups`],
      ["start", name],
    ]) {
      const r = docker(args);
      if (r.code !== 0) throw new Error(`docker ${args[0]}: ${r.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { schedule: "24h", maxAgeSeconds: 172_800, scheduleContainer: name, offsiteContainer: `${prefix}-backup-offsite` };
}

beforeAll(() => {
  image = busyboxImage();
}, 120_000);

afterAll(() => {
  for (let i = 1; i <= made; i++) {
    docker(["rm", "-f", `${prefix}-${i}-backup-schedule`]);
    docker(["volume", "rm", "-f", `${prefix}-${i}-backup-schedule`]);
  }
});

describe("runtime: backup ages from the volume, through the Engine API", () => {
  it("reads the newest dump and its off-host copy, and judges each against twice the schedule", async () => {
    const backup = scheduleContainer({
      "last-dump": `${epoch(3600)} production_scheduled_20261130T030000Z.dump 123456 4\n`,
      "last-offsite": `${epoch(200_000)} 1a2b3c4d production_scheduled_20261128T030000Z.dump 9\n`,
    });
    const ages = await readBackupAges(LOCAL, backup, now);
    expect(ages).toEqual([
      expect.objectContaining({ kind: "local", ok: true, ageSeconds: 3600, detail: "production_scheduled_20261130T030000Z.dump, 123456 bytes in 4 s" }),
      expect.objectContaining({ kind: "off-host", ok: false, ageSeconds: 200_000, detail: "production_scheduled_20261128T030000Z.dump as snapshot 1a2b3c4d" }),
    ]);
  });

  it("a copy never shipped, and the shipper's last problem, fail with what it said", async () => {
    const backup = scheduleContainer({
      "last-dump": `${epoch(10)} production_scheduled_20261130T030000Z.dump 1 1\n`,
      "offsite-error": `${epoch(5)} the repository password is wrong: restic cannot open the repository\n`,
    });
    const [local, offsite] = await readBackupAges(LOCAL, backup, now);
    expect(local.ok).toBe(true);
    expect(offsite).toMatchObject({ kind: "off-host", ok: false });
    expect(offsite.detail).toBe(`nothing shipped yet; last problem: the repository password is wrong: restic cannot open the repository (docker logs ${backup.offsiteContainer})`);
  });

  it("a failed restic check fails the off-host copy however recent it is", async () => {
    const backup = scheduleContainer({
      "last-dump": `${epoch(10)} d.dump 1 1\n`,
      "last-offsite": `${epoch(10)} 1a2b3c4d d.dump 1\n`,
      "offsite-check-failed": `${epoch(5)} pack 5f3a: ciphertext verification failed\n`,
    });
    const [, offsite] = await readBackupAges(LOCAL, backup, now);
    expect(offsite.ok).toBe(false);
    expect(offsite.detail).toContain("restic check found errors: pack 5f3a: ciphertext verification failed");
  });

  it("no scheduled dump yet is a failure, not an error", async () => {
    const backup = scheduleContainer({});
    const [local] = await readBackupAges(LOCAL, { ...backup, offsiteContainer: undefined }, now);
    expect(local).toMatchObject({ kind: "local", ok: false, detail: `no scheduled dump yet (docker logs ${backup.scheduleContainer})` });
  });

  it("a missing scheduled-dump container says so", async () => {
    const gone = { schedule: "24h", maxAgeSeconds: 172_800, scheduleContainer: `${prefix}-nope` };
    await expect(readBackupAges(LOCAL, gone, now)).rejects.toThrow(EngineUnreachable);
    await expect(readBackupAges(LOCAL, gone, now)).rejects.toThrow(`there is no container ${prefix}-nope`);
  });
});
