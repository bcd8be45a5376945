// Loaded before the Pulumi SDK on every `pulumi preview` and `up` (Pulumi.yaml:
// runtime.options.nodeargs), so that loading the program costs less. What each
// line saves, measured: docs/performance.md.
"use strict";
const nodeModule = require("node:module");
const os = require("node:os");
const path = require("node:path");

// V8's compile cache: the SDK, TypeScript and ts-node compile from cached
// bytecode after the first run instead of from source. In a directory of its
// own: V8 rejects a cache written under other V8 flags, and the SDK turns on
// --allow-natives-syntax at another point of its load here than in the ops
// commands' offline evaluations (Node's default directory); sharing one, each
// would throw away what the other wrote.
nodeModule.enableCompileCache?.(path.join(os.tmpdir(), "node-compile-cache-pulumi-host"));

// Node maps the program's own stack traces to its .ts lines (node_modules
// excluded); index.ts then drops ts-node's source-map-support, which maps every
// stack the SDK captures, SDK frames included, at several times the cost.
// APPSTACK_DEBUG=1 keeps it. Node < 22.14 has no such switch: ts-node maps.
nodeModule.setSourceMapsSupport?.(true, { nodeModules: false });
