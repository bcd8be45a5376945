import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as enginerpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineproto from "@pulumi/pulumi/proto/engine_pb";
import * as resrpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { parse as parseYaml } from "yaml";
import { UserError } from "../shared/errors";
import { readStackConfig, resolveStackFile, readProject } from "./stack-files";

/**
 * Runs the program the way `pulumi preview`/`up` does, with only the engine
 * replaced: the SDK's own entry point (`@pulumi/pulumi/cmd/run`) in a fresh
 * Node.js process, started with the node arguments, environment and command
 * line that the Node.js language host gives it, talking gRPC to an in-process
 * ResourceMonitor and Engine built on the SDK's generated service definitions.
 * The monitor answers every registration with its inputs as outputs. What
 * this measures and checks is the load path itself: Pulumi.yaml's
 * `nodeargs`, the tsconfig, ts-node, the SDK's start-up, the program.
 */

/** The nodejs runtime options of Pulumi.yaml that change how the program is started. */
export interface RuntimeOptions {
  typescript: boolean;
  /** `nodeargs`, split the way the language host splits it. */
  nodeArgs: string[];
  tsconfig?: string;
}

/**
 * Splits `nodeargs` into words as the language host does (Go's shlex):
 * blanks separate words, quotes group, a backslash escapes outside single quotes.
 */
export function splitNodeArgs(s: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < s.length) word += s[++i];
      else word += c;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      inWord = true;
      if (c === '"' || c === "'") quote = c;
      else if (c === "\\" && i + 1 < s.length) word += s[++i];
      else word += c;
    }
  }
  if (quote) throw new UserError(`Pulumi.yaml: runtime.options.nodeargs has an unclosed ${quote} quote.`);
  if (inWord) words.push(word);
  return words;
}

export function readRuntimeOptions(root: string): RuntimeOptions {
  const doc = parseYaml(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { runtime?: unknown };
  const options = (typeof doc.runtime === "object" && doc.runtime !== null ? (doc.runtime as { options?: Record<string, unknown> }).options : undefined) ?? {};
  const { typescript = true, nodeargs = "", tsconfig } = options;
  if (typeof typescript !== "boolean") throw new UserError("Pulumi.yaml: runtime.options.typescript must be true or false.");
  if (typeof nodeargs !== "string") throw new UserError("Pulumi.yaml: runtime.options.nodeargs must be a string.");
  if (tsconfig !== undefined && typeof tsconfig !== "string") throw new UserError("Pulumi.yaml: runtime.options.tsconfig must be a string.");
  return { typescript, nodeArgs: splitNodeArgs(nodeargs), tsconfig };
}

/** A position in a source file as the SDK reports it: a `file://` URI, line and column. */
export interface SourcePosition {
  uri: string;
  line: number;
  column: number;
}

/** One RegisterResource call as the engine received it. */
export interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** Where the SDK says the program declared it: the engine records it in the stack's state. */
  sourcePosition?: SourcePosition;
  /** The stack the SDK captured, from the declaring frame down. */
  stackTrace: SourcePosition[];
  /** Milliseconds after the process was spawned. */
  at: number;
}

export interface HostRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Messages the program sent to the engine's Log (errors and warnings a user would see). */
  logs: { severity: string; message: string }[];
  registrations: Registration[];
  /**
   * Milliseconds after spawn. `sdkReady`: the SDK set the stack as root
   * resource, the step right before it requires the program (SDK loaded,
   * ts-node registered). `programDone`: the last registration, the stack's
   * outputs. `exit`: the process ended. The program's own load is
   * `programDone - sdkReady`.
   */
  timings: { sdkReady?: number; programDone?: number; exit: number };
  /**
   * CPU milliseconds the process had used (user + system, from /proc) at
   * `sdkReady` and `programDone`: the figures that other load on the machine
   * does not inflate. Undefined where /proc is not there.
   */
  cpu: { sdkReady?: number; programDone?: number };
}

export interface HostRunOptions {
  root: string;
  stack: string;
  /** `pulumi preview` (the default) or `pulumi up`. */
  preview?: boolean;
  /** Extra environment for the program, on top of this process's (APPSTACK_DEBUG=1, for example). */
  env?: Record<string, string>;
  /** Replaces Pulumi.yaml's nodeargs (to measure without them). */
  nodeArgs?: string[];
  timeoutMs?: number;
}

const FEATURES = [
  "SECRETS",
  "RESOURCE_REFERENCES",
  "OUTPUT_VALUES",
  "ALIAS_SPECS",
  "DELETED_WITH",
  "REPLACE_WITH",
  "TRANSFORMS",
  "INVOKE_TRANSFORMS",
  "PARAMETERIZATION",
  "RESOURCE_HOOKS",
  "ERROR_HOOKS",
  "INVOKE_DEPENDS_ON",
] as const;
const LEGACY_FEATURES = new Set(["secrets", "resourceReferences", "outputValues", "aliasSpecs", "deletedWith", "replaceWith", "transforms", "invokeTransforms", "parameterization", "resourceHooks", "errorHooks"]);

/** User + system CPU milliseconds of a running process, from /proc (Linux); undefined elsewhere. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of stat(5) counted from `state` as field 3, in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
type Call<T> = { request: T };

const SEVERITY = Object.fromEntries(Object.entries(engineproto.LogSeverity).map(([k, v]) => [v, k.toLowerCase()]));

/** The engine side: a ResourceMonitor and an Engine that record what the program sends. */
class MockEngine {
  readonly server = new grpc.Server();
  readonly registrations: Registration[] = [];
  readonly logs: HostRun["logs"] = [];
  sdkReady?: number;
  readonly cpu: HostRun["cpu"] = {};
  /** The process the engine serves, for its CPU time. */
  pid?: number;
  /** The last RegisterResource or RegisterResourceOutputs: the stack's outputs come last, once the program is done. */
  lastRegistration?: number;
  private rootUrn = "";

  constructor(
    private readonly project: string,
    private readonly stack: string,
    private readonly preview: boolean,
    private readonly now: () => number,
  ) {
    const handle = <T, R>(handler: (req: T) => R) => (call: Call<T>, cb: Callback<R>) => {
      try {
        cb(null, handler(call.request));
      } catch (err) {
        cb({ code: grpc.status.INTERNAL, details: String(err) } as grpc.ServiceError);
      }
    };
    this.server.addService(resrpc.ResourceMonitorService, {
      getDeploymentInfo: handle(() => new resproto.DeploymentInfo().setSupportedfeaturesList(FEATURES.map((f) => resproto.ResourceMonitorFeature[`RESOURCE_MONITOR_FEATURE_${f}`]))),
      supportsFeature: handle((req: resproto.SupportsFeatureRequest) => new resproto.SupportsFeatureResponse().setHassupport(LEGACY_FEATURES.has(req.getId()))),
      registerResource: handle((req: resproto.RegisterResourceRequest) => this.register(req)),
      registerResourceOutputs: handle(() => {
        this.registered();
        return new Empty();
      }),
      invoke: handle((req: resproto.ResourceInvokeRequest) => new resproto.ResourceInvokeResponse().setReturn(req.getArgs() ?? new Struct())),
      registerPackage: handle((req: resproto.RegisterPackageRequest) => new resproto.RegisterPackageResponse().setRef(`${req.getName()}-${req.getVersion()}`)),
      signalAndWaitForShutdown: handle(() => new Empty()),
    });
    this.server.addService(enginerpc.EngineService, {
      log: handle((req: engineproto.LogRequest) => {
        this.logs.push({ severity: SEVERITY[req.getSeverity()] ?? String(req.getSeverity()), message: req.getMessage() });
        return new Empty();
      }),
      getRootResource: handle(() => new engineproto.GetRootResourceResponse().setUrn(this.rootUrn)),
      setRootResource: handle((req: engineproto.SetRootResourceRequest) => {
        this.sdkReady = this.now();
        this.cpu.sdkReady = processCpuMs(this.pid);
        this.rootUrn = req.getUrn();
        return new engineproto.SetRootResourceResponse();
      }),
    });
  }

  private registered(): void {
    this.lastRegistration = this.now();
    this.cpu.programDone = processCpuMs(this.pid);
  }

  private register(req: resproto.RegisterResourceRequest): resproto.RegisterResourceResponse {
    const type = req.getType();
    const name = req.getName();
    const parent = req.getParent();
    // The engine qualifies a child's type with its parent's, except under the stack.
    const parentType = parent ? parent.split("::")[2] : "";
    const qualified = parentType && parentType !== "pulumi:pulumi:Stack" ? `${parentType}$${type}` : type;
    const urn = `urn:pulumi:${this.stack}::${this.project}::${qualified}::${name}`;
    const position = (pos: { getUri(): string; getLine(): number; getColumn(): number }): SourcePosition => ({ uri: pos.getUri(), line: pos.getLine(), column: pos.getColumn() });
    const pos = req.getSourceposition();
    this.registrations.push({
      urn,
      type,
      name,
      custom: req.getCustom(),
      sourcePosition: pos ? position(pos) : undefined,
      stackTrace: (req.getStacktrace()?.getFramesList() ?? []).flatMap((f) => {
        const pc = f.getPc();
        return pc ? [position(pc)] : [];
      }),
      at: this.now(),
    });
    this.registered();
    // Outputs are the inputs, with the engine's one transformation a program relies on: additionalSecretOutputs.
    const outputs = req.getObject()?.toJavaScript() ?? {};
    for (const key of req.getAdditionalsecretoutputsList()) {
      if (key in outputs) outputs[key] = { [rpc.specialSigKey]: rpc.specialSecretSig, value: outputs[key] } as never;
    }
    const id = req.getCustom() ? (this.preview ? "" : `${name}-id`) : "";
    return new resproto.RegisterResourceResponse().setUrn(urn).setId(id).setObject(Struct.fromJavaScript(outputs));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }
}

/**
 * The argv and environment the Node.js language host starts the program
 * with (pulumi-language-nodejs: nodeargs, the SDK's run entry point, then
 * --monitor, --engine, --project, --root-directory, --stack, --pwd,
 * --dry-run, --parallel, and the entry point). Left out: --organization,
 * --sync and --tracing, which the host passes only when it has them and the
 * program does not use.
 */
export function hostCommand(
  root: string,
  runtime: RuntimeOptions,
  run: { project: string; stack: string; preview: boolean; address: string; config: Record<string, string>; secretKeys: string[] },
): { args: string[]; env: Record<string, string> } {
  const entry = require.resolve("@pulumi/pulumi/cmd/run", { paths: [root] });
  const args = [
    ...runtime.nodeArgs,
    entry,
    ...["--monitor", run.address, "--engine", run.address, "--project", run.project, "--root-directory", root, "--stack", run.stack, "--pwd", root],
    ...(run.preview ? ["--dry-run"] : []),
    // The CLI's default parallelism; the Node.js SDK loads the program the same way whatever it is.
    ...["--parallel", "16", "."],
  ];
  // The language host passes config keys in the older `<namespace>:config:<key>` form.
  const config = Object.fromEntries(
    Object.entries(run.config).map(([k, v]) => {
      const i = k.indexOf(":");
      return [`${k.slice(0, i)}:config:${k.slice(i + 1)}`, v];
    }),
  );
  const env: Record<string, string> = { PULUMI_CONFIG: JSON.stringify(config), PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(run.secretKeys) };
  if (runtime.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (runtime.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = runtime.tsconfig;
  return { args, env };
}

/** Runs one stack's program under the SDK's real entry point against the mock engine. */
export async function runUnderHost(opts: HostRunOptions): Promise<HostRun> {
  const { root } = opts;
  const preview = opts.preview ?? true;
  const project = readProject(root).name;
  const { stack, file } = resolveStackFile(root, { stack: opts.stack });
  const sc = readStackConfig(file, stack, project);
  const runtime = readRuntimeOptions(root);
  if (opts.nodeArgs) runtime.nodeArgs = opts.nodeArgs;

  let start = 0n;
  const now = () => Number(process.hrtime.bigint() - start) / 1e6;
  const engine = new MockEngine(project, stack, preview, now);
  const port = await engine.listen();
  try {
    const { args, env } = hostCommand(root, runtime, { project, stack, preview, address: `127.0.0.1:${port}`, config: sc.config, secretKeys: sc.secretKeys });
    // A variable this process was started with must not change what is measured.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PULUMI_|APPSTACK_DEBUG$|NODE_OPTIONS$|NODE_COMPILE_CACHE$|TS_NODE_)/.test(k)));
    start = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { cwd: root, env: { ...inherited, ...env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    engine.pid = child.pid;
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the program did not finish in ${timeoutMs / 1000} s under the language host's entry point; stderr:\n${stderr}`));
      }, timeoutMs);
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    const exit = now();
    return {
      exitCode,
      stdout,
      stderr,
      logs: engine.logs,
      registrations: engine.registrations,
      timings: { sdkReady: engine.sdkReady, programDone: engine.lastRegistration, exit },
      cpu: engine.cpu,
    };
  } finally {
    engine.server.forceShutdown();
  }
}
