import { AppStack } from "./components/app-stack";
import { loadConfig } from "./config";

const app = new AppStack("appstack", { config: loadConfig() });

export const { environment, postgres, redis, connections } = app.outputs;
