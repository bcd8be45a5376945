import { createHash } from "node:crypto";
import { EXIT, UserError } from "../shared/errors";

/**
 * The digest a registry gives an image's tag, over the registry HTTP API
 * (OCI distribution: `HEAD /v2/<name>/manifests/<tag>`, the digest in the
 * `Docker-Content-Digest` header), with the anonymous or basic-credential
 * bearer-token exchange a `401` asks for. `release --tag` writes the digest,
 * so the stack deploys exactly what the tag named when the release was made.
 */

/** What a manifest request accepts: multi-platform indexes first, so the digest is the one `docker pull` records. */
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

export interface RegistryOptions {
  /** Credentials for a private repository (`REGISTRY_USERNAME`, `REGISTRY_PASSWORD`): sent to the token service only. */
  username?: string;
  password?: string;
  timeoutMs?: number;
}

/** `ghcr.io/acme/api` -> the registry's host and the repository's name in it; a name without a host (Docker Hub) has none. */
export function splitRepository(repository: string): { host?: string; name: string } {
  const slash = repository.indexOf("/");
  const first = slash === -1 ? "" : repository.slice(0, slash);
  if (first && (first.includes(".") || first.includes(":") || first === "localhost")) return { host: first, name: repository.slice(slash + 1) };
  return { name: repository };
}

/** Docker treats a registry on the loopback interface as plain HTTP; every other one is HTTPS. */
function baseUrl(host: string): string {
  const hostname = host.replace(/:\d+$/, "");
  return `${["localhost", "127.0.0.1", "[::1]"].includes(hostname) ? "http" : "https"}://${host}`;
}

/** `Bearer realm="...",service="...",scope="..."` as its parameters. */
function challenge(header: string | null): Record<string, string> | undefined {
  if (!header || !/^Bearer\s/i.test(header)) return undefined;
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

function registryError(ref: string, message: string): UserError {
  return new UserError(`${message}\nThe stack file was not changed. Give the digest instead: --image ${ref}@sha256:<digest> (docker buildx imagetools inspect ${ref} prints it).`, EXIT.registry);
}

export async function resolveDigest(repository: string, tag: string, opts: RegistryOptions = {}): Promise<string> {
  const ref = `${repository}:${tag}`;
  const { host, name } = splitRepository(repository);
  if (!host) {
    throw registryError(ref, `--tag needs a reference that names its registry (ghcr.io/acme/api, registry.example.com:5000/api); "${repository}" names none.`);
  }
  const url = `${baseUrl(host)}/v2/${name}/manifests/${encodeURIComponent(tag)}`;
  const timeout = () => AbortSignal.timeout(opts.timeoutMs ?? 15_000);
  const request = async (method: string, headers: Record<string, string>) => {
    try {
      return await fetch(url, { method, headers: { Accept: ACCEPT, ...headers }, redirect: "follow", signal: timeout() });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw registryError(
        ref,
        `No registry answered at ${baseUrl(host)} (${cause?.code ?? cause?.message ?? (err as Error).message}): from this machine the registry cannot be reached, so the tag cannot be resolved to a digest.`,
      );
    }
  };

  let auth: Record<string, string> = {};
  let res = await request("HEAD", auth);
  const bearer = res.status === 401 ? challenge(res.headers.get("www-authenticate")) : undefined;
  if (bearer?.realm) {
    const tokenUrl = new URL(bearer.realm);
    if (bearer.service) tokenUrl.searchParams.set("service", bearer.service);
    tokenUrl.searchParams.set("scope", bearer.scope ?? `repository:${name}:pull`);
    const basic = opts.username && opts.password ? { Authorization: `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString("base64")}` } : {};
    const tokenRes = await fetch(tokenUrl, { headers: basic, signal: timeout() }).catch((err: Error) => {
      throw registryError(ref, `The registry's token service at ${tokenUrl.origin} did not answer: ${err.message}.`);
    });
    const body = (await tokenRes.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!tokenRes.ok || !token) {
      throw registryError(ref, `The registry refused a token for ${name} (HTTP ${tokenRes.status})${basic.Authorization ? "" : "; for a private repository set REGISTRY_USERNAME and REGISTRY_PASSWORD"}.`);
    }
    auth = { Authorization: `Bearer ${token}` };
    res = await request("HEAD", auth);
  }
  if (res.status === 404) throw registryError(ref, `The registry at ${host} has no tag "${tag}" of ${name}.`);
  if (res.status === 401 || res.status === 403) {
    throw registryError(ref, `The registry at ${host} refused to show ${name} (HTTP ${res.status}); for a private repository set REGISTRY_USERNAME and REGISTRY_PASSWORD.`);
  }
  if (!res.ok) throw registryError(ref, `The registry at ${host} answered HTTP ${res.status} for ${ref}.`);
  let digest = res.headers.get("docker-content-digest");
  if (!digest) {
    // A registry may leave the header off a HEAD; the digest is the manifest's own sha256.
    const get = await request("GET", auth);
    const bytes = Buffer.from(await get.arrayBuffer());
    digest = get.headers.get("docker-content-digest") ?? `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw registryError(ref, `The registry at ${host} gave "${digest}" as the digest of ${ref}, which is no sha256 digest.`);
  return digest;
}
