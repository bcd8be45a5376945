import { sshOptionProblems, transportProblem } from "../../config/docker-transport";
import { defineResourceRule } from "../rule";
import { isKnown } from "../view";

/** How the stack reaches its Docker engine: the same judgement as the config schema's (config/docker-transport.ts). */

const DOCKER_PROVIDER = "pulumi:providers:docker";

/** Provider inputs that hold a list arrive as JSON text from the engine; accept either form. */
function list(value: unknown): string[] | undefined {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      return Array.isArray(parsed) ? parsed.map(String) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export const dockerTransportSecure = defineResourceRule({
  name: "docker-transport-secure",
  description:
    "The Docker provider reaches its engine over ssh:// or over tcp:// with TLS material (CA, client certificate and key), and its ssh options are known-safe: " +
    "never StrictHostKeyChecking=no, a ProxyCommand or any option outside the allow-list. Docker access is root on the host and every runtime secret " +
    "crosses this connection (the seeds' 'Secure connection', production secrets management).",
  remediationSteps:
    "Set appstack:docker.host to ssh://deploy@<host> (or tcp:// with docker.tls: true and the dockerTlsCa/dockerTlsCert/dockerTlsKey secrets), " +
    "and keep docker.sshOpts to -o pairs from config/docker-transport.ts; `npm run validate` prints the exact commands.",
  severity: "critical",
  check(r, ctx) {
    if (r.type !== DOCKER_PROVIDER) return;
    const { host, caMaterial, certMaterial, keyMaterial } = r.props;
    if (!isKnown(host) || !isKnown(caMaterial) || !isKnown(certMaterial) || !isKnown(keyMaterial)) return;
    if (typeof host !== "string") {
      ctx.report("no host: the provider falls back to DOCKER_HOST or the local socket of whatever machine deploys");
    } else {
      const tls = [caMaterial, certMaterial, keyMaterial].every((m) => typeof m === "string" && m.length > 0);
      const problem = transportProblem(host, tls);
      if (problem) ctx.report(problem);
    }
    const opts = r.props.sshOpts;
    if (!isKnown(opts) || opts === undefined) return;
    const parsed = list(opts);
    if (!parsed) {
      ctx.report("sshOpts is not a list of strings");
      return;
    }
    for (const p of sshOptionProblems(parsed)) ctx.report(`sshOpts[${p.index}]: ${p.message}`);
  },
});

export const TRANSPORT_RULES = [dockerTransportSecure];
