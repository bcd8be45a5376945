// Entry point of every ops command (`npm run plan -- ...`): TypeScript is
// registered the way Pulumi's language host does it (see register-typescript.js),
// then ops/cli/cli.ts dispatches the command.
"use strict";
require("./offline/register-typescript");
require("./cli/cli").main(process.argv.slice(2));
