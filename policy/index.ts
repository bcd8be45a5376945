// The appstack-readiness policy pack, as the Pulumi CLI loads it:
//   pulumi preview -s <stack> --policy-pack policy --policy-pack-config policy/config.<stack>.json
// Constructing a PolicyPack starts its gRPC server, so this file does only that;
// the rules live in ./rules and run offline too (npm run policy).
import { PolicyPack } from "@pulumi/policy";
import { DEFAULT_ENFORCEMENT } from "./config";
import { PACK_NAME, toCrossGuardPolicies } from "./crossguard";
import { RULES } from "./rules";

new PolicyPack(PACK_NAME, {
  description: "appstack deployment readiness: the seeds' checklists as rules over the stack's resources.",
  enforcementLevel: DEFAULT_ENFORCEMENT,
  policies: toCrossGuardPolicies(RULES),
});
