import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface ImageSource {
  /** A registry reference, pulled on the Docker host. */
  image?: string;
  /** A local build (dev). */
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
}

export interface ResolvedImage {
  /** What a container's `image` input takes. */
  id: pulumi.Output<string>;
  /** The reference people read: the configured image, or the local tag of a build. */
  reference: string;
  /** The resource that pulls or builds it. */
  resource: docker.RemoteImage | docker.Image;
}

const SKIP = new Set(["node_modules", ".git", "dist", "build", ".turbo", "coverage"]);

/** A hash of the build context's files, so a changed source gives a new tag and the containers are replaced. */
export function contextHash(dir: string): string {
  const hash = crypto.createHash("sha256");
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (SKIP.has(entry.name)) continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) hash.update(path.relative(dir, full)).update("\0").update(fs.readFileSync(full)).update("\0");
    }
  };
  walk(dir);
  return hash.digest("hex").slice(0, 12);
}

/**
 * Pulls an image reference (kept locally when the resource is replaced, since
 * a running container may use it) or builds a local image tagged by content.
 */
export function resolveImage(
  name: string,
  src: ImageSource,
  opts: { stack: string; service: string; root: string; buildArgs?: Record<string, pulumi.Input<string>>; parent: pulumi.Resource },
): ResolvedImage {
  if (src.build) {
    const context = path.resolve(opts.root, src.build.context);
    if (!fs.existsSync(context)) {
      throw new pulumi.RunError(`${opts.service}.build.context: ${src.build.context} does not exist (relative to ${opts.root})`);
    }
    const reference = `appstack-${opts.stack}-${opts.service}:${contextHash(context)}`;
    const image = new docker.Image(
      `${name}-build`,
      {
        imageName: reference,
        skipPush: true,
        buildOnPreview: false,
        build: {
          context,
          dockerfile: src.build.dockerfile ? path.resolve(context, src.build.dockerfile) : undefined,
          args: { ...src.build.args, ...opts.buildArgs },
        },
      },
      { parent: opts.parent },
    );
    return { id: image.imageName, reference, resource: image };
  }
  if (!src.image) throw new pulumi.RunError(`${opts.service}: neither image nor build is set`);
  const remote = new docker.RemoteImage(`${name}-image`, { name: src.image, keepLocally: true }, { parent: opts.parent });
  return { id: remote.imageId, reference: src.image, resource: remote };
}

/**
 * What a Swarm service names its image by: the reference, which every node
 * pulls (the manager's pull serves its one-shot jobs); a local build by its
 * tag, once built, for a single-node dev swarm.
 */
export function serviceImage(image: ResolvedImage): pulumi.Input<string> {
  return image.resource instanceof docker.Image ? image.id : image.reference;
}
