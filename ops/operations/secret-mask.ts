import { SECRET } from "../shared/masks";

/** The password inside a secret that is a URL (`DATABASE_URL`), as written and decoded: an app may print it alone. */
function urlPasswords(value: string): string[] {
  try {
    const password = new URL(value).password;
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

/**
 * What a container prints, made safe to show (the diagnosis of an unhealthy
 * container, `logs`, `exec`): every secret the container was given (the
 * value of each env var whose name `isSecret` accepts, and the password
 * inside such a value when it is a URL), and any password in a URL, print
 * as [secret].
 */
export function masker(env: string[], isSecret: (name: string) => boolean): (text: string) => string {
  const values = [
    ...new Set(
      env
        .map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)] as const)
        .filter(([name]) => isSecret(name))
        .flatMap(([, value]) => [value, ...urlPasswords(value)])
        .filter((value) => value.length >= 4),
    ),
  ].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const v of values) out = out.split(v).join(SECRET);
    return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${SECRET}@`);
  };
}
