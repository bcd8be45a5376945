/**
 * Reading what a container prints through the Engine API: Docker's
 * multiplexed stream (a non-TTY container's stdout and stderr in frames),
 * split into lines, each with the timestamp Docker recorded.
 */

export type StreamName = "stdout" | "stderr";

/**
 * Splits Docker's multiplexed stream into its frames: an 8-byte header
 * (stream type, three zero bytes, the payload's length as a big-endian
 * uint32), then the payload. A TTY container's stream has no frames: all of
 * it is stdout. Chunks may end anywhere, a header included.
 */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onFrame: (stream: StreamName, payload: Buffer) => void,
    private readonly tty = false,
  ) {}

  push(chunk: Buffer): void {
    if (this.tty) return this.onFrame("stdout", chunk);
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      // Type 0 is stdin, 1 stdout, 2 stderr; Docker sends 1 and 2 for logs.
      this.onFrame(this.pending[0] === 2 ? "stderr" : "stdout", this.pending.subarray(8, 8 + size));
      this.pending = this.pending.subarray(8 + size);
    }
  }
}

/** Complete lines from chunks that may split a line (or a UTF-8 character) anywhere. */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      lines.push(data.subarray(start, nl).toString("utf8").replace(/\r$/, ""));
      start = nl + 1;
    }
    this.pending = data.subarray(start);
    return lines;
  }

  /** What is left after the stream ended: a last line without a newline. */
  flush(): string[] {
    const rest = this.pending.length ? [this.pending.toString("utf8")] : [];
    this.pending = Buffer.alloc(0);
    return rest;
  }
}

/**
 * A line of `GET /containers/{id}/logs?timestamps=1`: Docker's RFC 3339
 * timestamp, a space, the text. `key` sorts lines of several containers by
 * time (the fraction padded to nanoseconds, whatever precision was printed).
 */
export function splitTimestamp(line: string): { key: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z (.*)$/s.exec(line);
  if (!m) return { key: "", text: line };
  return { key: `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}`, text: m[3] };
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * `--since` as the Unix time the Engine API takes: a duration back from now
 * (`10m`, `2h`, `1h30m`, `7d`), or an RFC 3339 time (`2025-06-03T09:00:00Z`).
 */
export function sinceSeconds(value: string, nowMs: number): number {
  if (/^(\d+[smhd])+$/.test(value)) {
    const seconds = [...value.matchAll(/(\d+)([smhd])/g)].reduce((sum, [, n, unit]) => sum + Number(n) * UNIT_SECONDS[unit], 0);
    return Math.floor(nowMs / 1000) - seconds;
  }
  const t = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) {
    throw new Error(`--since takes a duration back from now (30s, 10m, 2h, 1h30m, 7d) or an RFC 3339 time (2025-06-03T09:00:00Z), got "${value}"`);
  }
  return Math.floor(t / 1000);
}
