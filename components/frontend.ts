import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as vercel from "@pulumiverse/vercel";
import { HEALTH_INTERVAL_SECONDS, vercelOutputDirectory, type ParsedAppConfig } from "../config";
import { applyTransform, hardening, LOG_ROTATION, RESTART_POLICY, secondsString, serviceLabels, type Transform } from "./container-defaults";
import { resolveImage } from "./image";
import { SECURITY_HEADERS } from "./security-headers";

export type FrontendConfig = NonNullable<ParsedAppConfig["frontend"]>;
export type VercelConfig = NonNullable<FrontendConfig["vercel"]>;

/** Vercel environments a plain variable goes to; the staging and production stacks each own their project. */
export const VERCEL_TARGETS = ["production", "preview"];
/**
 * Where a sensitive variable goes: production deployments only. Vercel builds
 * a preview for any branch of the web repository, so a secret on the preview
 * target is readable by anyone who can push a branch; `previewSecretEnv` opts
 * a variable in.
 */
export const VERCEL_SECRET_TARGETS = ["production"];

/** The port the dev frontend container serves on. */
export const FRONTEND_CONTAINER_PORT = 8080;

export interface FrontendArgs {
  config: FrontendConfig;
  mode: "vercel" | "container";
  environment: string;
  stack: string;
  release: string;
  /** The frontend's own public URL (from config/urls). */
  url: string;
  /** The API's public URL, given to the build as `apiUrlEnv`. */
  apiUrl?: string;
  /** Secrets named by `secretEnv`; created as sensitive Vercel variables. */
  secrets: Record<string, pulumi.Output<string>>;
  /** Vercel mode: the access token, a secret. */
  vercelApiToken?: pulumi.Output<string>;
  /** Container mode. */
  network?: pulumi.Input<string>;
  root: string;
  hostPort?: number;
  dependsOn: pulumi.Input<pulumi.Resource>[];
  transform?: { container?: Transform<docker.ContainerArgs>; project?: Transform<vercel.ProjectArgs> };
}

/**
 * The web frontend. On Vercel (staging, production): the project, its
 * variables (the API URL and sensitive secrets), a security-headers route, a
 * deployment and the custom domains. In dev: a local container running the
 * frontend image (the app's own static server).
 */
export class Frontend extends pulumi.ComponentResource {
  public readonly url: string;
  public readonly project?: vercel.Project;
  public readonly envVars: vercel.ProjectEnvironmentVariable[] = [];
  public readonly deployment?: vercel.Deployment;
  public readonly container?: docker.Container;
  /** The image reference (container mode). */
  public readonly image?: string;

  constructor(name: string, args: FrontendArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("appstack:components:Frontend", name, {}, opts);
    this.url = args.url;
    const plainEnv: Record<string, string> = { ...args.config.env };
    if (args.apiUrl) plainEnv[args.config.apiUrlEnv] = args.apiUrl;

    if (args.mode === "vercel") {
      const vc = args.config.vercel;
      if (!vc || !args.vercelApiToken) throw new Error(`Frontend "${name}": vercel mode needs vercel config and a token`);
      const provider = new vercel.Provider(`${name}-vercel`, { apiToken: args.vercelApiToken, team: vc.teamId }, { parent: this });
      const childOpts = { parent: this, provider };
      this.project = this.createProject(name, args, vc, childOpts);
      this.createEnvVars(name, args, vc, plainEnv, childOpts);
      const route = this.createHeadersRoute(name, vc, childOpts);
      // The build reads the variables, and the first response it serves must already carry the headers.
      this.deployment = this.createDeployment(name, args, vc, plainEnv, [...this.envVars, route], childOpts);
      args.config.domains.forEach(
        (domain, i) => new vercel.ProjectDomain(`${name}-domain-${i + 1}`, { projectId: this.project!.id, domain, teamId: vc.teamId }, childOpts),
      );
    } else {
      const image = resolveImage(name, args.config, {
        stack: args.stack,
        service: "frontend",
        root: args.root,
        buildArgs: plainEnv,
        parent: this,
      });
      this.image = image.reference;
      this.container = this.createContainer(name, args, image.id, image.reference, plainEnv);
    }
    this.registerOutputs({ url: this.url });
  }

  private createProject(name: string, args: FrontendArgs, vc: VercelConfig, opts: pulumi.CustomResourceOptions): vercel.Project {
    const projectArgs: vercel.ProjectArgs = {
      name: vc.projectName,
      teamId: vc.teamId,
      framework: vc.framework,
      buildCommand: vc.buildCommand,
      installCommand: vc.installCommand,
      outputDirectory: vercelOutputDirectory(vc),
      rootDirectory: vc.rootDirectory,
      gitRepository: { type: vc.gitRepository.type, repo: vc.gitRepository.repo, productionBranch: vc.gitRepository.productionBranch },
    };
    return new vercel.Project(`${name}-project`, applyTransform(projectArgs, args.transform?.project), {
      ...opts,
      // Deleting the project deletes its domains and deployment history.
      protect: args.environment === "production",
    });
  }

  private createEnvVars(
    name: string,
    args: FrontendArgs,
    vc: VercelConfig,
    plainEnv: Record<string, string>,
    opts: pulumi.CustomResourceOptions,
  ): void {
    const add = (key: string, value: pulumi.Input<string>, sensitive: boolean, targets: string[]) =>
      this.envVars.push(
        new vercel.ProjectEnvironmentVariable(
          `${name}-env-${key}`,
          { projectId: this.project!.id, teamId: vc.teamId, key, value, targets, sensitive },
          // Vercel refuses a second variable with the same key and target (ENV_ALREADY_EXISTS,
          // pulumiverse/pulumi-vercel#118), so a replaced variable is deleted before it is re-created.
          { ...opts, deleteBeforeReplace: true },
        ),
      );
    for (const key of Object.keys(plainEnv).sort()) add(key, plainEnv[key], false, VERCEL_TARGETS);
    for (const key of Object.keys(args.secrets).sort()) {
      const targets = args.config.previewSecretEnv.includes(key) ? VERCEL_TARGETS : VERCEL_SECRET_TARGETS;
      add(key, pulumi.secret(args.secrets[key]), true, targets);
    }
  }

  private createHeadersRoute(name: string, vc: VercelConfig, opts: pulumi.CustomResourceOptions): vercel.ProjectRoute {
    return new vercel.ProjectRoute(
      `${name}-security-headers`,
      {
        projectId: this.project!.id,
        teamId: vc.teamId,
        name: "appstack-security-headers",
        description: "Security headers on every response (managed by appstack)",
        position: { placement: "start" },
        route: { src: "/(.*)", headers: { ...SECURITY_HEADERS } },
      },
      opts,
    );
  }

  private createDeployment(
    name: string,
    args: FrontendArgs,
    vc: VercelConfig,
    plainEnv: Record<string, string>,
    after: pulumi.Resource[],
    opts: pulumi.CustomResourceOptions,
  ): vercel.Deployment {
    return new vercel.Deployment(
      `${name}-deployment`,
      {
        projectId: this.project!.id,
        teamId: vc.teamId,
        ref: vc.ref ?? vc.gitRepository.productionBranch,
        production: true,
        // The build bakes the variables in: a changed value or release must rebuild.
        meta: { appstackRelease: args.release, appstackEnv: JSON.stringify(plainEnv) },
      },
      { ...opts, dependsOn: [...after, ...(args.dependsOn as pulumi.Resource[])], replaceOnChanges: ["meta"] },
    );
  }

  private createContainer(
    name: string,
    args: FrontendArgs,
    image: pulumi.Input<string>,
    reference: string,
    plainEnv: Record<string, string>,
  ): docker.Container {
    if (!args.network) throw new Error(`Frontend "${name}": container mode needs a network`);
    // The image is the app's own static server (examples/app/frontend: it sends the security headers itself).
    const containerArgs: docker.ContainerArgs = {
      image,
      envs: Object.entries({ ...plainEnv, PORT: String(FRONTEND_CONTAINER_PORT) }).map(([k, v]) => `${k}=${v}`),
      networksAdvanced: [{ name: args.network }],
      ...hardening({ stack: args.stack, service: "frontend", writable: ["/tmp"] }),
      ports: [{ internal: FRONTEND_CONTAINER_PORT, external: args.hostPort ?? FRONTEND_CONTAINER_PORT, ip: "127.0.0.1" }],
      healthcheck: {
        tests: [
          "CMD",
          "node",
          "-e",
          `fetch("http://127.0.0.1:${FRONTEND_CONTAINER_PORT}/",{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
        ],
        interval: secondsString(HEALTH_INTERVAL_SECONDS),
        timeout: "3s",
        retries: 3,
        startPeriod: "5s",
      },
      wait: true,
      waitTimeout: 60,
      restart: RESTART_POLICY,
      memory: 128,
      cpus: "0.5",
      ...LOG_ROTATION,
      labels: serviceLabels({ stack: args.stack, service: "frontend", version: args.release, role: "service", image: reference }),
    };
    return new docker.Container(`${name}-server`, applyTransform(containerArgs, args.transform?.container), {
      parent: this,
      dependsOn: args.dependsOn,
      // A published host port cannot be held by two containers.
      deleteBeforeReplace: true,
    });
  }
}
