import type { Rule } from "../rule";
import { CONTAINER_RULES } from "./containers";
import { DATA_RULES } from "./data";
import { PRIVILEGE_RULES } from "./privileges";
import { SECRET_RULES } from "./secrets";
import { STACK_RULES } from "./stack";
import { SWARM_RULES } from "./swarm";
import { TRANSPORT_RULES } from "./transport";
import { WEB_RULES } from "./web";

/** Every rule of the appstack-readiness pack, in the order reports list them. */
export const RULES: readonly Rule[] = [...CONTAINER_RULES, ...PRIVILEGE_RULES, ...DATA_RULES, ...SECRET_RULES, ...TRANSPORT_RULES, ...WEB_RULES, ...SWARM_RULES, ...STACK_RULES];
