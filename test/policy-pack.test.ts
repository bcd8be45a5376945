import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as analyzerGrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerPb from "@pulumi/pulumi/proto/analyzer_pb";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { UnknownValueError, unknownCheckingProxy, type ResourceValidationArgs, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../ops/offline/offline-runtime";
import { loadPolicyConfig, type RuleSettings } from "../policy/config";
import { configSchemaOf, fromPolicyProps, PACK_NAME, toCrossGuardPolicies } from "../policy/crossguard";
import { evaluateRules } from "../policy/evaluate";
import { RULES } from "../policy/rules";
import { corsRestricted } from "../policy/rules/web";
import { decodeWire, UNKNOWN, viewFromWire } from "../policy/view";
import { ROOT } from "./helpers/cli";
import { stackResources } from "./helpers/policy";

const production = () => loadPolicyConfig(path.join(ROOT, "policy/config.production.json"), RULES);

describe("CrossGuard adapter", () => {
  it("decodes the engine's wire encoding: secrets unwrapped and listed, unknowns marked, references as URNs", () => {
    const secret = (value: unknown) => ({ [rpc.specialSigKey]: rpc.specialSecretSig, value });
    const { value, secretPaths } = decodeWire({
      envs: ["PORT=3000", secret("DATABASE_URL=postgresql://x"), rpc.unknownValue],
      nested: { list: [{ a: secret(1) }] },
      ref: { [rpc.specialSigKey]: rpc.specialResourceSig, urn: "urn:x" },
    });
    expect(value).toEqual({ envs: ["PORT=3000", "DATABASE_URL=postgresql://x", UNKNOWN], nested: { list: [{ a: 1 }] }, ref: "urn:x" });
    expect([...secretPaths]).toEqual(["envs[1]", "nested.list[0].a"]);
  });

  it("a value the preview cannot know does not abort a rule: the rest of the resource is still judged", () => {
    // Under the SDK's proxy, reading an unknown throws; the adapter turns it into UNKNOWN instead.
    const props = unknownCheckingProxy({ envs: ["CORS_ORIGIN=*", "FRONTEND_URL=https://app.example.com", "04da6b54-80e4-46f7-96ec-b56ff0331ba9"], labels: [] });
    expect(() => (props as { envs: string[] }).envs[2]).toThrow(UnknownValueError);
    expect(fromPolicyProps(props)).toEqual({ envs: ["CORS_ORIGIN=*", "FRONTEND_URL=https://app.example.com", UNKNOWN], labels: [] });

    const policy = toCrossGuardPolicies([corsRestricted])[0] as ResourceValidationPolicy;
    const reported: string[] = [];
    const args = {
      type: "docker:index/container:Container",
      urn: "urn:pulumi:production::appstack::docker:index/container:Container::api-1",
      name: "api-1",
      props: unknownCheckingProxy({
        labels: [
          { label: "appstack.project", value: "appstack" },
          { label: "appstack.service", value: "api" },
          { label: "appstack.role", value: "service" },
        ],
        envs: ["CORS_ORIGIN=*", "FRONTEND_URL=https://app.example.com", "04da6b54-80e4-46f7-96ec-b56ff0331ba9"],
      }),
      opts: { protect: false, ignoreChanges: [], aliases: [], additionalSecretOutputs: ["envs"], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 } },
      stackTags: new Map(),
      getConfig: () => ({}),
    } as unknown as ResourceValidationArgs;
    (policy.validateResource as (a: ResourceValidationArgs, r: (m: string) => void) => void)(args, (m) => reported.push(m));
    expect(reported).toEqual(['CORS_ORIGIN is "*": any web site could call the API with the user\'s credentials', expect.stringContaining("differs from FRONTEND_URL")]);
  });

  it("every rule becomes a policy: resource rules validate resources, stack rules the stack, settings as JSON schema", () => {
    const policies = toCrossGuardPolicies(RULES);
    expect(policies.map((p) => p.name)).toEqual(RULES.map((r) => r.name));
    for (const [i, rule] of RULES.entries()) {
      const p = policies[i];
      expect(p.description).toBe(rule.description);
      expect(p.enforcementLevel).toBe("mandatory");
      if (rule.kind === "resource") expect((p as ResourceValidationPolicy).validateResource).toBeTypeOf("function");
      else expect((p as StackValidationPolicy).validateStack).toBeTypeOf("function");
    }
    expect(configSchemaOf(RULES.find((r) => r.name === "generated-secret-length")!)).toEqual({
      properties: { minLength: { type: "integer", minimum: 16, maximum: Number.MAX_SAFE_INTEGER, default: 32 } },
    });
  });
});

/** Speaks to the pack over gRPC as the engine does. */
class PackClient {
  private constructor(
    readonly child: ChildProcess,
    private readonly client: InstanceType<typeof analyzerGrpc.AnalyzerClient>,
  ) {}

  /**
   * Starts the pack the way the Node.js language host runs a policy pack: the
   * SDK's run-policy-pack entry point, the pack directory as program and cwd
   * (so its tsconfig.json and package.json are the ones used).
   */
  static async start(): Promise<PackClient> {
    const entry = require.resolve("@pulumi/pulumi/cmd/run-policy-pack");
    const child = spawn(process.execPath, [entry, "127.0.0.1:1", "."], { cwd: path.join(ROOT, "policy"), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the pack printed no port in 90 s; stderr:\n${stderr}`)), 90_000);
      child.stdout!.once("data", (d) => {
        clearTimeout(timer);
        resolve(Number(String(d).trim()));
      });
      child.once("exit", (code) => reject(new Error(`the pack exited with ${code}:\n${stderr}`)));
    });
    return new PackClient(child, new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) =>
      (this.client as unknown as Record<string, (r: Req, cb: (e: Error | null, res: Res) => void) => void>)[method](req, (e, res) => (e ? reject(e) : resolve(res))),
    );
  }

  info(): Promise<analyzerPb.AnalyzerInfo> {
    return this.call("getAnalyzerInfo", new Empty());
  }

  /** The engine's reconciled config: every policy with its level and settings. */
  async configure(settings: Map<string, RuleSettings>): Promise<void> {
    const req = new analyzerPb.ConfigureAnalyzerRequest();
    const levels = { advisory: analyzerPb.EnforcementLevel.ADVISORY, mandatory: analyzerPb.EnforcementLevel.MANDATORY, disabled: analyzerPb.EnforcementLevel.DISABLED };
    for (const [name, s] of settings) {
      const pc = new analyzerPb.PolicyConfig();
      pc.setEnforcementlevel(levels[s.level]);
      pc.setProperties(Struct.fromJavaScript(s.config as Record<string, never>));
      req.getPolicyconfigMap().set(name, pc);
    }
    await this.call("configure", req);
  }

  private options(r: RecordedResource): analyzerPb.AnalyzerResourceOptions {
    const o = new analyzerPb.AnalyzerResourceOptions();
    o.setProtect(r.options.protect);
    o.setAdditionalsecretoutputsList(r.options.additionalSecretOutputs);
    o.setParent(r.parent);
    return o;
  }

  /** The fields an analyze request and a stack resource share: identity, inputs in wire encoding, options. */
  private fill<T extends analyzerPb.AnalyzeRequest | analyzerPb.AnalyzerResource>(target: T, r: RecordedResource): T {
    target.setType(r.type);
    target.setName(r.name);
    target.setUrn(r.urn);
    target.setProperties(Struct.fromJavaScript(r.inputs as Record<string, never>));
    target.setOptions(this.options(r));
    return target;
  }

  async analyze(r: RecordedResource): Promise<analyzerPb.AnalyzeDiagnostic[]> {
    const req = this.fill(new analyzerPb.AnalyzeRequest(), r);
    return (await this.call<analyzerPb.AnalyzeRequest, analyzerPb.AnalyzeResponse>("analyze", req)).getDiagnosticsList();
  }

  async analyzeStack(resources: RecordedResource[]): Promise<analyzerPb.AnalyzeDiagnostic[]> {
    const req = new analyzerPb.AnalyzeStackRequest();
    req.setResourcesList(
      resources.map((r) => {
        const ar = this.fill(new analyzerPb.AnalyzerResource(), r);
        ar.setParent(r.parent);
        ar.setDependenciesList(r.options.dependsOn);
        return ar;
      }),
    );
    return (await this.call<analyzerPb.AnalyzeStackRequest, analyzerPb.AnalyzeResponse>("analyzeStack", req)).getDiagnosticsList();
  }

  stop(): void {
    this.client.close();
    this.child.kill();
  }
}

/**
 * Violations as comparable strings. Two checks exist only offline, because
 * @pulumi/policy shows policies neither secrecy (pulumi/pulumi-policy#241)
 * nor retainOnDelete.
 */
const OFFLINE_ONLY = /is a plain string; it must be a secret|is not retained on delete/;
const comparable = (vs: { rule: string; urn?: string; message: string; level: string }[]) =>
  vs
    .filter((v) => !OFFLINE_ONLY.test(v.message))
    .map((v) => `${v.level} ${v.rule} ${v.urn ?? ""} ${v.message}`)
    .sort();

describe("the pack as the Pulumi CLI runs it", () => {
  let pack: PackClient;
  beforeAll(async () => {
    pack = await PackClient.start();
  }, 120_000);
  afterAll(() => pack?.stop());

  it("loads from policy/ and announces appstack-readiness with every rule, its reason and its settings", async () => {
    const info = await pack.info();
    expect(info.getName()).toBe(PACK_NAME);
    expect(info.getVersion()).toBe("0.1.0");
    expect(info.getSupportsconfig()).toBe(true);
    const policies = info.getPoliciesList();
    expect(policies.map((p) => p.getName())).toEqual(RULES.map((r) => r.name));
    for (const p of policies) {
      expect(p.getDescription()).toBe(RULES.find((r) => r.name === p.getName())!.description);
      expect(p.getEnforcementlevel()).toBe(analyzerPb.EnforcementLevel.MANDATORY);
    }
    const schema = policies.find((p) => p.getName() === "worker-graceful-stop")!.getConfigschema()!;
    expect(schema.getProperties()!.toJavaScript()).toEqual({ minSeconds: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 30 } });
  });

  const both = async (stack: string, stackFile: string | undefined, settings: Map<string, RuleSettings>) => {
    const resources = await stackResources(stack, stackFile);
    const offline = evaluateRules(resources.map(viewFromWire), RULES, settings).violations;
    await pack.configure(settings);
    // A resource diagnostic is about the analyzed resource; the SDK prefixes each message with the rule's description.
    const diagnostics = [
      ...(await Promise.all(resources.map(async (r) => (await pack.analyze(r)).map((d) => ({ d, urn: r.urn }))))).flat(),
      ...(await pack.analyzeStack(resources)).map((d) => ({ d, urn: d.getUrn() })),
    ];
    const level = (l: number) => (l === analyzerPb.EnforcementLevel.MANDATORY ? "mandatory" : "advisory");
    const fromPack = diagnostics.map(({ d, urn }) => ({
      rule: d.getPolicyname(),
      urn: urn || undefined,
      message: d.getMessage().replace(`${d.getDescription()}\n`, ""),
      level: level(d.getEnforcementlevel()),
    }));
    return { resources, offline, fromPack };
  };

  it("over the production stack, the pack reports what the offline run reports", async () => {
    const { resources, offline, fromPack } = await both("production", undefined, production());
    expect(resources.length).toBeGreaterThan(5);
    expect(comparable(fromPack)).toEqual(comparable(offline));
  }, 60_000);

  it("over the unready fixture with production's policy config, both report the same violations", async () => {
    const { offline, fromPack } = await both("production", path.join(ROOT, "test/fixtures/Pulumi.unready.yaml"), production());
    expect(comparable(offline).length).toBeGreaterThan(3);
    expect(comparable(fromPack)).toEqual(comparable(offline));
  }, 60_000);
});
