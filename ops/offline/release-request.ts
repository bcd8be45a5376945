import { parseImageReference } from "../../config/schema";
import { EXIT, UserError } from "../shared/errors";
import { checkImageReference, RELEASE_SERVICES, type ReleaseService } from "./stack-file-edit";
import { resolveStackFile } from "./stack-files";

/** What a release asks for: the values of `npm run release`'s options, or of the release workflow's inputs. */
export interface ReleaseRequest {
  stack: string;
  service: string;
  image: string;
  /** Resolve `image:tag` to its digest at the registry. */
  tag?: string;
}

const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * The request, checked before anything reads or writes a file: the values may
 * come from a workflow's inputs, so each must be exactly what it claims (a
 * stack with a stack file, a service release knows, one image reference).
 */
export function checkReleaseRequest(root: string, req: Partial<ReleaseRequest>): ReleaseRequest & { service: ReleaseService; file: string } {
  for (const name of ["stack", "service", "image"] as const) {
    if (typeof req[name] !== "string" || req[name] === "") throw new UserError(`The release names no ${name}: give --${name}.`, EXIT.usage);
  }
  const { file } = resolveStackFile(root, { stack: req.stack });
  if (!(RELEASE_SERVICES as readonly string[]).includes(req.service!)) {
    throw new UserError(`--service must be one of ${RELEASE_SERVICES.join(", ")} (the images your app's CI builds), got "${req.service}".`, EXIT.usage);
  }
  checkImageReference(req.image!);
  if (req.tag !== undefined) {
    if (!TAG.test(req.tag)) throw new UserError(`--tag "${req.tag}" is not an image tag (letters, digits, _ . -; at most 128).`, EXIT.usage);
    const { tag, digest } = parseImageReference(req.image!);
    if (tag || digest) throw new UserError(`With --tag, --image names the repository alone (ghcr.io/acme/api), got "${req.image}".`, EXIT.usage);
  }
  return { stack: req.stack!, image: req.image!, tag: req.tag, service: req.service as ReleaseService, file };
}
