import { AppStack } from "./components/app-stack";
import { loadConfig } from "./config";

const app = new AppStack("appstack", { config: loadConfig(), root: __dirname });

export const { environment, version, endpoints, images, postgres, redis, connections, backup } = app.outputs;
