import { engineJson, type DockerTarget, type EngineOptions } from "./docker-engine";

/**
 * The containers of a stack's service on its Docker host, found by the
 * labels every appstack container carries (components/container-defaults.ts):
 * `appstack.stack`, `appstack.service`, `appstack.role` (`service` runs until
 * stopped, `job` once; `oneoff` marks what `exec` starts), `appstack.image`.
 */

/** The parts of `docker inspect` (GET /containers/{id}/json) that logs and exec read. */
export interface ContainerDetails {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  State: { Status: string; Running: boolean };
  Config: {
    Image?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    User?: string;
    WorkingDir?: string;
    Entrypoint?: string[] | null;
    Tty?: boolean;
  };
  HostConfig: { NetworkMode?: string; Memory?: number; NanoCpus?: number };
  NetworkSettings?: { Networks?: Record<string, unknown> | null };
}

export interface StackContainer {
  id: string;
  /** The Docker name, without its leading slash. */
  name: string;
  service: string;
  role: string;
  /** The image reference the stack declared for it (`appstack.image`). */
  image?: string;
  /** The replica number in its name (`api-3f2a1b2c-2-...`, `worker-2-...`), else its place in name order. */
  replica: number;
  running: boolean;
  details: ContainerDetails;
}

/** The `-<n>` after a resource name in a container's name, before Pulumi's 7-character suffix. */
function replicaInName(name: string): number | undefined {
  const m = /-(\d+)(?:-[0-9a-f]{7})?$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Every container of the stack (of one service, when named), running or
 * not, that the stack itself declared: what `exec` started is left out.
 * Ordered by service, then replica.
 */
export async function stackContainers(target: DockerTarget, stack: string, service?: string, opts: EngineOptions = {}): Promise<StackContainer[]> {
  const labels = [`appstack.stack=${stack}`, ...(service ? [`appstack.service=${service}`] : [])];
  const filters = encodeURIComponent(JSON.stringify({ label: labels }));
  const listed = await engineJson<{ Id: string; Names: string[]; Labels?: Record<string, string> }[]>(target, `/containers/json?all=1&filters=${filters}`, opts);
  const own = listed.filter((c) => c.Labels?.["appstack.role"] !== "oneoff");
  const details = await Promise.all(own.map((c) => engineJson<ContainerDetails>(target, `/containers/${c.Id}/json`, opts)));
  const byName = details
    .map((d) => ({ d, name: d.Name.replace(/^\//, "") }))
    .sort((a, b) => (a.d.Config.Labels?.["appstack.service"] ?? "").localeCompare(b.d.Config.Labels?.["appstack.service"] ?? "") || a.name.localeCompare(b.name));
  const seen = new Map<string, number>();
  return byName.map(({ d, name }) => {
    const svc = d.Config.Labels?.["appstack.service"] ?? "?";
    seen.set(svc, (seen.get(svc) ?? 0) + 1);
    return {
      id: d.Id,
      name,
      service: svc,
      role: d.Config.Labels?.["appstack.role"] ?? "?",
      image: d.Config.Labels?.["appstack.image"],
      replica: replicaInName(name) ?? seen.get(svc)!,
      running: d.State.Running,
      details: d,
    };
  });
}
