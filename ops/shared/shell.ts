/** Arguments as one line a POSIX shell reads back as the same arguments, for commands a message tells the user to paste. */
export function shellLine(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}
