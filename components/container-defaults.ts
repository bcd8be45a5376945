import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { HEALTH_INTERVAL_SECONDS } from "../config";

/** Who a container belongs to, for `docker ps --filter label=...` and for the policy pack. */
export interface ServiceIdentity {
  stack: string;
  service: string;
  /** For data stores the image tag; for app services the release. */
  version: pulumi.Input<string>;
  /** `service` runs until stopped and has a health check; `job` runs once and exits. */
  role?: "service" | "job";
  /** The image reference as configured, so `docker ps` and the plan show what runs. */
  image?: pulumi.Input<string>;
}

export const LABEL_PREFIX = "appstack";

export function serviceLabels(id: ServiceIdentity): docker.types.input.ContainerLabel[] {
  return [
    { label: `${LABEL_PREFIX}.project`, value: "appstack" },
    { label: `${LABEL_PREFIX}.stack`, value: id.stack },
    { label: `${LABEL_PREFIX}.service`, value: id.service },
    { label: `${LABEL_PREFIX}.version`, value: id.version },
    ...(id.role ? [{ label: `${LABEL_PREFIX}.role`, value: id.role }] : []),
    ...(id.image ? [{ label: `${LABEL_PREFIX}.image`, value: id.image }] : []),
  ];
}

/** Rotated json-file logs: a chatty container cannot fill the host's disk. */
export const LOG_ROTATION = {
  logDriver: "json-file",
  logOpts: { "max-size": "10m", "max-file": "5" },
} as const;

/** Restarted after a crash or a host reboot, but not after an explicit `docker stop`. */
export const RESTART_POLICY = "unless-stopped";

/** Seconds after a data store's start during which failed probes do not count: Postgres's first start runs initdb. */
export const DATA_STORE_START_PERIOD_SECONDS = 30;

/** Health-check timings shared by the data stores. */
export const DATA_STORE_HEALTH = {
  interval: `${HEALTH_INTERVAL_SECONDS}s`,
  timeout: "3s",
  retries: 5,
  startPeriod: `${DATA_STORE_START_PERIOD_SECONDS}s`,
} as const;

/** The same timings as numbers, for a Swarm service's update monitor. */
export const DATA_STORE_HEALTH_SECONDS = {
  intervalSeconds: HEALTH_INTERVAL_SECONDS,
  retries: DATA_STORE_HEALTH.retries,
  startPeriodSeconds: DATA_STORE_START_PERIOD_SECONDS,
} as const;

/** A plain function that adjusts a child's args, so a user need not fork the component. */
export type Transform<T> = (args: T) => T;

export function applyTransform<T>(args: T, transform?: Transform<T>): T {
  return transform ? transform(args) : args;
}

/** Docker health-check durations are strings with a unit. */
export const secondsString = (s: number) => `${s}s`;

/** `docker run --security-opt no-new-privileges`: no process in the container gains privileges through setuid or file capabilities. */
export const NO_NEW_PRIVILEGES = "no-new-privileges:true";

/**
 * A tmpfs a process may write, and run nothing from (Docker mounts every tmpfs
 * noexec unless told `exec`); it counts against the container's memory limit.
 * Over a folder the image has, the tmpfs takes that folder's mode and owner
 * (Docker copies it up), so `mode` applies only to a path the image lacks.
 */
export const TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,mode=1777";

/**
 * The cgroup slice a service's containers run in: `appstack-<stack>-<service>.slice`.
 * The Docker provider (pulumi-docker 5.2.0) cannot set a container's pids
 * limit (`docker run --pids-limit`), so the limit on processes and threads
 * is the slice's: with systemd, the dashes nest it under
 * `appstack-<stack>.slice` and `appstack.slice`, so one `TasksMax` on the
 * stack's slice bounds all of its containers (docs/security.md).
 */
export const serviceSlice = (stack: string, service: string) => `appstack-${stack}-${service}.slice`;

/** What a service's process needs on its host: the one definition both modes harden it from (hardening(), serviceHardening()). */
export interface HardeningNeeds {
  /** Capabilities the process needs, added back after all are dropped. @default none */
  capabilities?: string[];
  /** Paths the process writes that are not volumes: tmpfs mounts on the read-only root filesystem. */
  writable: string[];
  /** tmpfs options by path, where a path needs other than TMPFS_OPTIONS. */
  tmpfsOptions?: Record<string, string>;
}

export interface Hardening extends HardeningNeeds {
  stack: string;
  service: string;
  /**
   * Keep the root filesystem writable: only for a container given files
   * (`uploads`). The provider copies them into the container through `/`
   * (`PUT /containers/{id}/archive?path=/`), which Docker refuses for a
   * read-only root filesystem, even for a file on a volume.
   */
  writableRoot?: boolean;
}

/**
 * What every container gets: all capabilities dropped (the named ones added
 * back), no new privileges, a read-only root filesystem with tmpfs where the
 * process writes (unless `writableRoot`), and its service's cgroup slice.
 */
export function hardening(h: Hardening): Pick<docker.ContainerArgs, "capabilities" | "securityOpts" | "readOnly" | "tmpfs" | "cgroupParent"> {
  return {
    capabilities: { drops: ["ALL"], adds: h.capabilities ?? [] },
    securityOpts: [NO_NEW_PRIVILEGES],
    readOnly: !h.writableRoot,
    tmpfs: h.writableRoot ? undefined : Object.fromEntries(h.writable.map((p) => [p, h.tmpfsOptions?.[p] ?? TMPFS_OPTIONS])),
    cgroupParent: serviceSlice(h.stack, h.service),
  };
}

/** `size=` and `mode=` of a tmpfs options string, as a Swarm mount's TmpfsOptions (bytes; the mode's octal digits). */
function swarmTmpfsOptions(options: string): docker.types.input.ServiceTaskSpecContainerSpecMountTmpfsOptions | undefined {
  const opts = Object.fromEntries(options.split(",").map((o) => o.split("=") as [string, string?]));
  const units: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  const size = /^(\d+)([kmg]?)$/i.exec(opts.size ?? "");
  const out = {
    ...(size ? { sizeBytes: Number(size[1]) * units[size[2].toLowerCase()] } : {}),
    ...(opts.mode ? { mode: parseInt(opts.mode, 8) } : {}),
  };
  return Object.keys(out).length ? out : undefined;
}

/**
 * What a Swarm service's task gets of hardening() (docker.mode: swarm), from
 * the same needs: all capabilities dropped (the named ones added back), a
 * read-only root filesystem, and a tmpfs mount (with its size and mode) where
 * the process writes. The engine mounts every tmpfs mount noexec, nosuid and
 * nodev; API 1.41 takes no other tmpfs option. Not to be had on a service
 * with the Docker provider 5.2.0 and Engine API 1.41: no-new-privileges (the
 * provider's `privileges` and the API's ContainerSpec.Privileges have no
 * such field), and the cgroup slice (a service's spec has no cgroup parent);
 * docs/security.md.
 */
export function serviceHardening(h: HardeningNeeds): {
  capDrops: string[];
  capAdds: string[] | undefined;
  readOnly: true;
  tmpfs: docker.types.input.ServiceTaskSpecContainerSpecMount[];
} {
  return {
    capDrops: ["ALL"],
    capAdds: h.capabilities?.length ? h.capabilities : undefined,
    readOnly: true,
    tmpfs: h.writable.map((target) => ({ type: "tmpfs", target, tmpfsOptions: swarmTmpfsOptions(h.tmpfsOptions?.[target] ?? TMPFS_OPTIONS) })),
  };
}
