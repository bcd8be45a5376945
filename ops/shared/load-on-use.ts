/**
 * Loads a module the first time a command needs it, so the commands that do
 * not need it start without it. Under ops/run.js ts-node compiles what
 * `require` loads (a dynamic import would bypass it); where no `.ts` hook is
 * registered (vitest running a command in its own process), `import()` does.
 * `file`: an absolute path, without extension.
 */
export async function loadOnUse<T>(file: string): Promise<T> {
  if (typeof require === "function" && require.extensions?.[".ts"]) return require(file) as T;
  return (await import(file)) as T;
}
