// Entry point of every ops command (`npm run plan -- ...`): TypeScript is
// registered the way Pulumi's language host does it (see register-typescript.js),
// then ops/cli.ts dispatches the command.
"use strict";
require("./register-typescript");
require("./cli").main(process.argv.slice(2));
