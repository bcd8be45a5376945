/**
 * How appstack may reach a stack's Docker engine. Docker access is root on
 * the host, so outside dev the connection must authenticate the host and the
 * client: `ssh://` with the host's key checked, or `tcp://` with TLS material
 * (CA, client certificate and key) from secure config. Used by the config
 * schema (an error with the fix) and by the policy pack (a rule), so both
 * judge the same way.
 */

export const DOCKER_SCHEMES = ["unix", "ssh", "tcp", "npipe"] as const;
export type DockerScheme = (typeof DOCKER_SCHEMES)[number];

/** The secure keys that hold the TLS material of a `tcp://` host (`docker.tls: true`). */
export const DOCKER_TLS_SECRETS = { ca: "dockerTlsCa", cert: "dockerTlsCert", key: "dockerTlsKey" } as const;

export function dockerScheme(host: string): DockerScheme | undefined {
  const scheme = /^([a-z]+):\/\//.exec(host)?.[1];
  return (DOCKER_SCHEMES as readonly string[]).includes(scheme ?? "") ? (scheme as DockerScheme) : undefined;
}

const anything = (): undefined => undefined;
const count = (v: string): string | undefined => (/^\d+$/.test(v.trim()) ? undefined : `expected a number, got "${v}"`);

/**
 * ssh options a stack may pass (`-o Key=Value`), each with a check of its
 * value. Everything else is refused: `ProxyCommand`, `LocalCommand` and
 * `PermitLocalCommand` run commands on the deploying machine,
 * `StrictHostKeyChecking` other than `yes` and a `UserKnownHostsFile` of
 * /dev/null accept any host (a man in the middle gets what the deploy sends:
 * every secret, and root on the host), and forwarding options open ways back
 * into the machine that deploys.
 */
const SSH_OPTION_RULES: Record<string, (value: string) => string | undefined> = {
  StrictHostKeyChecking: (v) =>
    v.trim().toLowerCase() === "yes" ? undefined : `StrictHostKeyChecking=${v} accepts a host whose key is unknown or changed; only "yes" is allowed`,
  UserKnownHostsFile: (v) => (/^\s*(\/dev\/null|none)\s*$/i.test(v) ? `UserKnownHostsFile=${v} checks the host's key against nothing` : undefined),
  IdentityFile: anything,
  IdentitiesOnly: anything,
  BatchMode: anything,
  ConnectTimeout: count,
  ConnectionAttempts: count,
  ServerAliveInterval: count,
  ServerAliveCountMax: count,
  Compression: anything,
  LogLevel: anything,
  HostKeyAlias: anything,
};

export const ALLOWED_SSH_OPTIONS: readonly string[] = Object.keys(SSH_OPTION_RULES);
const BY_LOWER_CASE = new Map(ALLOWED_SSH_OPTIONS.map((k) => [k.toLowerCase(), k]));

export interface SshOptionProblem {
  /** Index in `docker.sshOpts` of the entry at fault. */
  index: number;
  message: string;
}

/**
 * Problems of an `sshOpts` list: every entry is `-o` followed by
 * `Key=Value` (or `-oKey=Value` as one entry), with an allowed key and value.
 */
export function sshOptionProblems(opts: readonly string[]): SshOptionProblem[] {
  const problems: SshOptionProblem[] = [];
  for (let i = 0; i < opts.length; i++) {
    const entry = opts[i];
    let option: string | undefined;
    let at = i;
    if (entry === "-o") {
      option = opts[i + 1];
      at = i + 1;
      i++;
      if (option === undefined) {
        problems.push({ index: i - 1, message: '"-o" without an option after it' });
        continue;
      }
    } else if (entry.startsWith("-o")) {
      option = entry.slice(2);
    } else {
      problems.push({ index: i, message: `"${entry}" is not an ssh option; only "-o", "Key=Value" pairs are allowed (${ALLOWED_SSH_OPTIONS.join(", ")})` });
      continue;
    }
    const m = /^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(option);
    if (!m) {
      problems.push({ index: at, message: `"${option}" is not Key=Value` });
      continue;
    }
    const key = BY_LOWER_CASE.get(m[1].toLowerCase());
    if (!key) {
      problems.push({ index: at, message: `ssh option ${m[1]} is not allowed (allowed: ${ALLOWED_SSH_OPTIONS.join(", ")})` });
      continue;
    }
    const bad = SSH_OPTION_RULES[key](m[2]);
    if (bad) problems.push({ index: at, message: bad });
  }
  return problems;
}

/**
 * Why a Docker host is not acceptable outside dev, or undefined. `tls` says
 * whether TLS material is configured.
 */
export function transportProblem(host: string, tls: boolean): string | undefined {
  const scheme = dockerScheme(host);
  if (scheme === "ssh") return undefined;
  if (scheme === "tcp") return tls ? undefined : `${host} is plain TCP: anyone on the path can read every secret and run containers as root on the host`;
  return `the local Docker engine (${host}) is for dev; outside dev the Docker host is reached over ssh://, or tcp:// with TLS`;
}
