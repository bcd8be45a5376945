// `npm run bench:backup`: TypeScript registered as ops/run.js does, then the benchmark (test/bench/backup.ts).
"use strict";
require("../../ops/offline/register-typescript");
require("./backup")
  .main(process.argv.slice(2))
  .catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
