import { AppStack } from "./components/app-stack";
import { loadConfig } from "./config";

// Node maps this program's stack traces (ops/offline/preload.js); ts-node's source-map-support, mapping every stack the SDK captures, would double its load.
if (process.sourceMapsEnabled && !process.env.APPSTACK_DEBUG) Reflect.deleteProperty(Error, "prepareStackTrace");
const app = new AppStack("appstack", { config: loadConfig(), root: __dirname });

export const { environment, version, endpoints, images, postgres, redis, connections, backup } = app.outputs;
