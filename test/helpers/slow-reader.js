// A deliberately slow consumer of a pipe, like `| (sleep 1; jq .)` or a busy
// CI step: it reads nothing for the first PAUSE_MS (so the writer fills the
// pipe's buffer and has to wait), then copies stdin to stdout 4 KiB at a time
// with a pause between reads. Blocking reads on fd 0, so no stream buffer in
// this process drains the pipe faster than that.
"use strict";
const fs = require("node:fs");

const PAUSE_MS = Number(process.env.SLOW_READER_PAUSE_MS ?? 500);
const EVERY_MS = Number(process.env.SLOW_READER_EVERY_MS ?? 2);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);

const buf = Buffer.alloc(4096);
sleep(PAUSE_MS);
for (;;) {
  const n = fs.readSync(0, buf, 0, buf.length, null);
  if (n === 0) break;
  let off = 0;
  while (off < n) off += fs.writeSync(1, buf, off, n - off);
  sleep(EVERY_MS);
}
