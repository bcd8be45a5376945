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
