import * as fs from "node:fs";
import * as path from "node:path";
import { runDiff } from "../diff/diff-command";
import { checkReleaseRequest, type ReleaseRequest } from "../offline/release-request";
import { setServiceImage } from "../offline/stack-file-edit";
import { readProject } from "../offline/stack-files";
import { validateStack } from "../offline/validate";
import { resolveDigest, type RegistryOptions } from "../operations/registry";
import { EXIT, UserError } from "../shared/errors";

/**
 * `npm run release`: a new image for one service, written into
 * `Pulumi.<stack>.yaml` (that one line; see ops/offline/stack-file-edit.ts),
 * checked against the schema (a production stack still needs a digest or a
 * version tag), then the offline diff of the stack against HEAD. This is what
 * release.yml runs before it opens its pull request; the deploy is the merge.
 */

export type { ReleaseRequest };

export interface ReleaseOptions extends ReleaseRequest {
  root: string;
  /** Show the offline diff afterwards (default true). */
  diff?: boolean;
  registry?: RegistryOptions;
  log?(line: string): void;
}

export async function release(opts: ReleaseOptions): Promise<number> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const req = checkReleaseRequest(opts.root, opts);
  let image = req.image;
  if (req.tag !== undefined) {
    const digest = await resolveDigest(req.image, req.tag, opts.registry);
    image = `${req.image}:${req.tag}@${digest}`;
    log(`${req.image}:${req.tag} is ${digest} at its registry.`);
  }

  const project = readProject(opts.root).name;
  const before = fs.readFileSync(req.file, "utf8");
  const edit = setServiceImage(before, { file: req.file, project, stack: req.stack, service: req.service, image });
  const where = `${path.basename(req.file)}, line ${edit.line}`;
  if (edit.previous === image) {
    log(`Stack "${req.stack}" already runs ${image} for ${req.service} (${where}); nothing was changed.`);
    return EXIT.ok;
  }
  fs.writeFileSync(req.file, edit.text);
  try {
    await validateStack({ root: opts.root, stack: req.stack });
  } catch (err) {
    fs.writeFileSync(req.file, before);
    if (err instanceof UserError) throw new UserError(`${err.message}\n${path.basename(req.file)} was left as it was.`, err.exitCode);
    throw err;
  }
  log(`Stack "${req.stack}": ${project}:${req.service}.image ${edit.previous} -> ${image} (${where}; no other line changed).`);
  if (opts.diff === false) return EXIT.ok;

  log("");
  try {
    const { output, exitCode } = await runDiff({ root: opts.root, stack: req.stack, base: "HEAD", format: "markdown", allowDestructive: false });
    log(output);
    return exitCode;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log(`The offline diff against HEAD did not run (the stack file is changed all the same):\n${err.message}`);
    return err.exitCode;
  }
}
