import type { Command } from 'commander';
import { COMPLETE_COMMAND, completeWords } from './completion.js';
import { OcteliumError } from './errors.js';
import { applyNoColor } from './help.js';

/**
 * One top-level catch for every CLI (changesets' shape): known errors print one clear line and exit
 * with a code per class; anything else is a bug and prints its stack.
 */
export async function runCli(program: Command, name: string, argv = process.argv): Promise<void> {
  applyNoColor();
  try {
    // Completion words go to the completer raw: commander would take `--domain x` or `--help` among them as its own.
    if (argv[2] === COMPLETE_COMMAND) {
      for (const c of await completeWords(program, argv.slice(3))) console.log(c);
      return;
    }
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof OcteliumError) {
      // A message that already names its remedy (log in again, where tokens come from) needs no generic hint.
      const hint = err.httpStatus === 401 && !/octelium login|create cred/.test(err.message) ? '\nhint: run `octelium login --domain <DOMAIN> --auth-token <TOKEN>`' : '';
      console.error(`${name}: ${err.message}${hint}`);
      process.exitCode = err.httpStatus === 401 ? 3 : err.code === 'OCT_ERR_UNREACHABLE' ? 4 : 1;
    } else if (err instanceof Error && 'code' in err && String((err as { code: unknown }).code).startsWith('commander.')) {
      process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
    } else {
      console.error(`${name}: internal error (this is a bug):`, err);
      process.exitCode = 70;
    }
  }
}
