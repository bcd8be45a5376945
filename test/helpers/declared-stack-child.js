// Child process of test/helpers/declared-stack.ts: registers TypeScript the way
// the ops commands (and Pulumi's language host) do, then evaluates one stack.
"use strict";
require("../../ops/offline/register-typescript");
require("./declared-stack").childMain().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
