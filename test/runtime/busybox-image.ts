import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { dockerCli } from "./engine";

/**
 * A tiny image for runtime tests, built without a registry: Debian's static
 * busybox (apt-get install busybox-static, as .ci/run does) and its applets,
 * `docker import`ed. It has a shell and coreutils, and no node.
 */
export const BUSYBOX_IMAGE = "appstack-test-busybox:static";

/** The docker CLI (engine.ts). */
export const docker = dockerCli;

export function busyboxImage(): string {
  if (docker(["image", "inspect", BUSYBOX_IMAGE]).code === 0) return BUSYBOX_IMAGE;
  const busybox = "/bin/busybox";
  if (!fs.existsSync(busybox)) throw new Error("no /bin/busybox: apt-get install busybox-static (.ci/run installs it)");
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-busybox-"));
  try {
    fs.mkdirSync(path.join(root, "bin"));
    fs.mkdirSync(path.join(root, "tmp"));
    fs.copyFileSync(busybox, path.join(root, "bin", "busybox"));
    fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
    for (const applet of ["sh", "sleep", "echo", "cat", "true", "false"]) fs.symlinkSync("busybox", path.join(root, "bin", applet));
    const tar = spawnSync("tar", ["-C", root, "-c", "."], { maxBuffer: 64 * 1024 * 1024 });
    const imported = spawnSync("docker", ["import", "--change", "ENV PATH=/bin", "-", BUSYBOX_IMAGE], { input: tar.stdout, encoding: "utf8", timeout: 120_000 });
    if (imported.status !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
    return BUSYBOX_IMAGE;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
