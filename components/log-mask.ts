/** How a masked value prints: the same mark the plan and the diff use. */
export const SECRET_MARK = "[secret]";

/**
 * Secrets shorter than this cannot be masked reliably: replacing every
 * occurrence of a few characters mangles the log and still lets a reader
 * guess the value from what is left around it.
 */
export const MIN_MASKABLE_SECRET = 8;

/** `scheme://user:password@`: the user info of any URL, whoever's it is. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^\s@/?#:]*:[^\s@]*@/gi;

/**
 * The spellings of a secret a program may print: as is, URL-encoded, escaped
 * in JSON, and for a connection URL its password, decoded and encoded, and
 * each line of a multi-line value (a PEM key).
 */
function spellings(secret: string): string[] {
  const out = new Set<string>([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]);
  try {
    const url = new URL(secret);
    if (url.password) {
      out.add(url.password);
      out.add(decodeURIComponent(url.password));
    }
  } catch {
    // not a URL
  }
  for (const line of secret.split(/\r?\n/)) if (line.trim().length >= MIN_MASKABLE_SECRET) out.add(line.trim());
  return [...out].filter((s) => s.length > 0);
}

/**
 * `text` with every spelling of every secret, and the credentials of every
 * URL, replaced by `[secret]`; or undefined when that cannot be done safely
 * (a secret shorter than MIN_MASKABLE_SECRET), in which case show none of it.
 */
export function maskSecrets(text: string, secrets: readonly string[]): string | undefined {
  const values = secrets.filter((s) => s.length > 0);
  if (values.some((s) => s.length < MIN_MASKABLE_SECRET)) return undefined;
  // Longest first, so a URL is masked whole before the password inside it.
  const all = [...new Set(values.flatMap(spellings))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of all) out = out.split(s).join(SECRET_MARK);
  return out.replace(URL_CREDENTIALS, `$1${SECRET_MARK}@`);
}
