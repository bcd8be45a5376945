import * as path from "node:path";
import { Composer, CST, isMap, isScalar, Parser, type Document } from "yaml";
import { imageReference } from "../../config/schema";
import { EXIT, UserError } from "../shared/errors";

/**
 * Changes one service's image in a stack file and nothing else: the file is
 * read with the `yaml` library's document API (`Composer` with
 * `keepSourceTokens`, so every node keeps the concrete-syntax token it was
 * read from), the image node is found by its path, its token's value is set
 * (`CST.setScalarValue`), and the file is written back from the tokens. Every
 * other byte (comments, blank lines, quoting, flow lists, key order) is the
 * one that was read.
 */

/** The services a release sets the image of: what the app's own CI builds. */
export const RELEASE_SERVICES = ["api", "worker"] as const;
export type ReleaseService = (typeof RELEASE_SERVICES)[number];

export interface ImageEdit {
  /** The file's new text. */
  text: string;
  /** The image before, and its 1-based line. */
  previous: string;
  line: number;
}

function parse(text: string, file: string): { tokens: CST.Token[]; doc: Document.Parsed } {
  const tokens = [...new Parser().parse(text)];
  const docs = [...new Composer({ keepSourceTokens: true, uniqueKeys: true }).compose(tokens)];
  const doc = docs[0];
  if (!doc || docs.length !== 1 || doc.errors.length > 0) {
    throw new UserError(`${path.basename(file)} is not a single valid YAML document${doc?.errors[0] ? `: ${doc.errors[0].message.split("\n")[0]}` : ""}; it was not changed.`);
  }
  return { tokens, doc };
}

/** Sets `<project>:<service>.image` in a stack file's text; the rest of the text is unchanged. */
export function setServiceImage(text: string, opts: { file: string; project: string; stack: string; service: ReleaseService; image: string }): ImageEdit {
  const { tokens, doc } = parse(text, opts.file);
  const key = `${opts.project}:${opts.service}`;
  const section = doc.getIn(["config", key], true);
  const where = `${path.basename(opts.file)}`;
  if (!isMap(section)) {
    throw new UserError(`${where} has no ${key} section, so stack "${opts.stack}" runs no ${opts.service}; nothing was changed.`, EXIT.usage);
  }
  const node = section.get("image", true);
  if (!isScalar(node) || typeof node.value !== "string" || !node.srcToken) {
    const build = section.get("build") !== undefined;
    throw new UserError(
      (build
        ? `Stack "${opts.stack}" builds its ${opts.service} image from source (${opts.service}.build in ${where}); a release sets an image, which this stack does not use.`
        : opts.service === "worker"
          ? `The worker of stack "${opts.stack}" runs the API's image (${where} sets no worker.image): release the api and the worker follows. ` +
            `To release the worker's image on its own, add an image line under ${key} once.`
          : `${where} sets no ${opts.service}.image.`) + " Nothing was changed.",
      EXIT.usage,
    );
  }
  const previous = node.value;
  CST.setScalarValue(node.srcToken, opts.image);
  const out = tokens.map((t) => CST.stringify(t)).join("");
  // What the edited file says is what was asked for: read it back.
  const check = parse(out, opts.file).doc.getIn(["config", key, "image"]);
  if (check !== opts.image) throw new Error(`${where}: wrote ${opts.service}.image but it reads back as ${String(check)}`);
  return { text: out, previous, line: text.slice(0, node.range![0]).split("\n").length };
}

/** An image reference as release takes it: the schema's own rule, on one line. */
export function checkImageReference(image: string): string {
  const parsed = imageReference.safeParse(image);
  if (!parsed.success || /\s/.test(image)) {
    throw new UserError(
      `--image "${image.replace(/[^\x20-\x7e]/g, "?")}" is not an image reference: expected name[:tag][@sha256:<64 hex digits>], e.g. ghcr.io/acme/api@sha256:... or ghcr.io/acme/api:1.5.0.`,
      EXIT.usage,
    );
  }
  return image;
}
