import type { Command } from 'commander';

/** An "Examples:" section for a command's --help, one shell line each (kubectl's shape). */
export function exampleText(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}

/** Adds an "Examples:" section after a command's --help. */
export function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', exampleText(lines));
}

/** The exit codes every CLI shares (docs/cli.md), for the root command's --help. */
export const EXIT_CODES_HELP = `
Exit codes:
  0   success
  1   error: bad argument or input, refused by the cluster, not found
  2   octeliumctl policy test: the request would be DENIED
  3   not authenticated: no, expired or revoked Session (run octelium login again)
  4   the cluster cannot be reached (check --domain / OCTELIUM_DOMAIN / --context)
  70  internal error (a bug; the stack trace is printed)`;

/**
 * NO_COLOR (no-color.org): any non-empty value turns colour off. commander honours it; chalk, under ink's live
 * views, only reads FORCE_COLOR — set that before ink loads.
 */
export function applyNoColor(env: NodeJS.ProcessEnv = process.env): void {
  if (env.NO_COLOR) env.FORCE_COLOR = '0';
}
