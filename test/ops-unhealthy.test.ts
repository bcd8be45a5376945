import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackSecretEnv } from "../config";
import { deploy } from "../ops/operations/deploy";
import { masker } from "../ops/operations/secret-mask";
import { diagnoseUnhealthy, LEFT_BEHIND } from "../ops/operations/unhealthy";
import { EXIT } from "../ops/shared/errors";
import { commandError, FakeAutomation, testContext } from "./helpers/automation";
import { ROOT } from "./helpers/cli";
import { deployOptions } from "./helpers/deploy-options";
import { STAGING_STACK, tempProject } from "./helpers/project";

/**
 * The diagnosis of a deploy stopped by an unhealthy container, against an
 * HTTP server on a unix socket that answers with a real engine's JSON
 * (test/fixtures/docker: GET /containers/json and /containers/{id}/json of a
 * worker whose check failed, captured from Docker 20.10). The same code
 * against a real engine: test/runtime/docker-engine.test.ts.
 */

const FIXTURES = path.join(__dirname, "fixtures", "docker");
const list = fs.readFileSync(path.join(FIXTURES, "containers-list.staging.json"), "utf8");
const inspect = fs.readFileSync(path.join(FIXTURES, "container-inspect.unhealthy-worker.json"), "utf8");
const id = (JSON.parse(list) as { Id: string }[])[0].Id;

let tmp: string;
let host: string;
let server: http.Server;
let requests: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "appstack-unhealthy-"));
  const socket = path.join(tmp, "docker.sock");
  server = http.createServer((req, res) => {
    requests.push(req.url!);
    res.setHeader("content-type", "application/json");
    if (req.url!.startsWith("/containers/json?")) res.end(list);
    else if (req.url === `/containers/${id}/json`) res.end(inspect);
    else {
      res.statusCode = 404;
      res.end('{"message":"no such container"}');
    }
  });
  await new Promise<void>((r) => server.listen(socket, r));
  host = `unix://${socket}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const isSecret = stackSecretEnv({ worker: { secretEnv: ["OPENAI_API_KEY"] } } as never);

describe("why a waited-on container never turned healthy", () => {
  it("asks the engine for this stack's service containers only", async () => {
    requests = [];
    await diagnoseUnhealthy({ host }, "staging", isSecret);
    expect(decodeURIComponent(requests[0])).toBe('/containers/json?all=1&filters={"label":["appstack.stack=staging","appstack.role=service"]}');
    expect(requests[1]).toBe(`/containers/${id}/json`);
  });

  it("names the service, the check it ran, its last output, what to change, and what the deploy left behind", async () => {
    requests = [];
    const text = await diagnoseUnhealthy({ host }, "staging", isSecret);
    expect(text.split("\n").slice(0, 6)).toEqual([
      "",
      "Containers of this stack that are not healthy (docker inspect):",
      `- worker: container appstack-i15fx-worker-1 (${id.slice(0, 12)}, image ghcr.io/acme/appstack-api:1.5.0-rc.1), running, health unhealthy`,
      `  health check: CMD-SHELL "echo \\"no heartbeat file /tmp/worker-heartbeat: the worker must touch \\\\$HEARTBEAT_FILE at least every 60 s\\"; exit 1"`,
      expect.stringMatching(/^ {2}last check \(exit 1, 20\d\d-[\d-]+T[\d:.]+Z\): no heartbeat file \/tmp\/worker-heartbeat: the worker must touch \$HEARTBEAT_FILE at least every 60 s$/),
      expect.stringMatching(/^ {2}last check \(exit 1, /),
    ]);
    expect(text).toContain(
      "  to change: the worker writes no heartbeat: make it touch $HEARTBEAT_FILE at least every maxAgeSeconds, or go back to the default process check: pulumi config rm -s staging --path worker.health",
    );
    expect(text).toContain(`What this deploy left behind (it stopped at worker): ${LEFT_BEHIND.worker}`);
    expect(text).not.toContain("sk-fixture-openai-key");
  });

  it("masks the value of every secret env var and every password in a URL", () => {
    const mask = masker(["OPENAI_API_KEY=sk-abc123456", "DATABASE_URL=postgres-url-value", "LOG_LEVEL=info", "MY_TOKEN=tok"], isSecret);
    expect(mask("key sk-abc123456, url postgres-url-value, level info, tok, redis://default:hunter2@cache:6379/0")).toBe(
      "key [secret], url [secret], level info, tok, redis://default:[secret]@cache:6379/0",
    );
  });

  it("an engine it cannot reach is a line in the error, never a second failure", async () => {
    const text = await diagnoseUnhealthy({ host: `unix://${tmp}/none.sock` }, "staging", isSecret);
    expect(text).toMatch(/^\n\(The containers' health could not be read from unix:\/\/.*none\.sock: connect ENOENT/);
  });

  it("docs/operations.md says what a deploy stopped at each step leaves behind, in the words the error uses", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs", "operations.md"), "utf8");
    for (const [service, text] of Object.entries(LEFT_BEHIND)) expect(doc, service).toContain(text);
  });
});

describe("deploy: an update that fails on an unhealthy container", () => {
  it("ends with the engine's error, then the diagnosis, then the rollback command", async () => {
    const root = tempProject({ "Pulumi.staging.yaml": STAGING_STACK });
    const auto = new FakeAutomation(() => ({
      up: () => {
        throw commandError("error: update failed\n  docker:index/container:Container (worker-1):\n    error: container failed to be in healthy state");
      },
    }));
    const err = await deploy(testContext(root, auto), deployOptions(root, { diagnose: () => diagnoseUnhealthy({ host }, "staging", isSecret) })).catch((e) => e);
    expect(err.exitCode).toBe(EXIT.updateFailed);
    const message: string = err.message;
    const order = ["container failed to be in healthy state", "- worker: container appstack-i15fx-worker-1", "to change: the worker writes no heartbeat", "npm run rollback -- --stack staging"];
    expect(order.map((s) => message.indexOf(s))).toEqual([...order.map((s) => message.indexOf(s))].sort((a, b) => a - b));
    for (const s of order) expect(message).toContain(s);
  });
});
