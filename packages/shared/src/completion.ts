import type { Command, Option } from 'commander';
import { authenticatedClient } from './cli-auth.js';
import { OcteliumError } from './errors.js';
import { exampleText } from './help.js';
import { KINDS, type KindName } from './kinds.js';
import { listLogins } from './login-state.js';

/** The hidden subcommand the completion scripts call: `BIN __complete WORD… CURRENT` prints one candidate a line. */
export const COMPLETE_COMMAND = '__complete';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** What a command's completer is asked: the option whose value is wanted (if any), else the positional index. */
export interface CompletionRequest {
  /** Long flag (`--user`) whose value is being completed; undefined when a positional argument is. */
  option?: string;
  /** Index of the positional argument being completed (0 = first). */
  argIndex: number;
  /** Positional arguments typed before it. */
  args: string[];
  /** Option values typed so far on the line (`domain`, `context`, … by attribute name), for API look-ups. */
  opts: Record<string, string>;
}

export type Completer = (req: CompletionRequest) => string[] | Promise<string[]>;

const completers = new WeakMap<Command, Completer>();

/** Dynamic candidates for a command's arguments and option values (resource names from the API, …). */
export function setCompleter(cmd: Command, fn: Completer): Command {
  completers.set(cmd, fn);
  return cmd;
}

function visibleSubcommands(cmd: Command): Command[] {
  return cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden && c.name() !== 'help');
}

function findSubcommand(cmd: Command, word: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

/** The options a word may name at this point: the command's own and every ancestor's (global options). */
function optionsInScope(cmd: Command): Option[] {
  const out: Option[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) out.push(...c.options);
  return out;
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

/**
 * Candidates for the last word of `words` (the one being typed; '' for a fresh one), walking commander's own tree:
 * subcommand names, option flags, `choices` of an option, or what a command's completer returns. Filtering by the
 * typed prefix happens here, so the shell scripts stay one line each.
 */
export async function completeWords(program: Command, words: string[]): Promise<string[]> {
  const current = words.length ? words[words.length - 1] : '';
  const before = words.slice(0, -1);
  let cmd = program;
  const args: string[] = [];
  const opts: Record<string, string> = {};
  let pending: Option | undefined;
  for (let i = 0; i < before.length; i++) {
    const w = before[i];
    if (w.startsWith('-') && w.length > 1) {
      const [flag, inline] = w.split(/=(.*)/s, 2);
      const o = optionsInScope(cmd).find((x) => x.long === flag || x.short === flag);
      if (!o || !takesValue(o)) continue;
      if (inline !== undefined) opts[o.attributeName()] = inline;
      else if (i + 1 < before.length) opts[o.attributeName()] = before[++i];
      else pending = o;
      continue;
    }
    const sub = args.length === 0 ? findSubcommand(cmd, w) : undefined;
    if (sub) cmd = sub;
    else args.push(w);
  }
  let candidates: string[];
  if (pending) {
    const choices = (pending as Option & { argChoices?: string[] }).argChoices;
    candidates = choices ?? (await ask(cmd, { option: pending.long ?? pending.short, argIndex: args.length, args, opts }));
  } else if (current.startsWith('-')) {
    candidates = optionsInScope(cmd).filter((o) => !o.hidden).flatMap((o) => [o.long, o.short]).filter((f): f is string => Boolean(f));
    candidates.push('--help');
  } else if (args.length === 0 && visibleSubcommands(cmd).length) {
    candidates = visibleSubcommands(cmd).map((c) => c.name());
  } else {
    candidates = await ask(cmd, { argIndex: args.length, args, opts });
  }
  return [...new Set(candidates)].filter((c) => c.startsWith(current));
}

/** A completer that fails (cluster down, not logged in) or is slow offers nothing rather than an error. */
async function ask(cmd: Command, req: CompletionRequest): Promise<string[]> {
  const fn = completers.get(cmd);
  if (!fn) return [];
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(fn(req)),
      new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), 3000))),
    ]);
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The script to source for `shell`. Each passes the words up to the cursor (the current one last, possibly empty) to
 * `BIN __complete`, which prints the candidates; the shell only offers them.
 */
export function completionScript(bin: string, shell: Shell): string {
  const fn = `_${bin.replace(/[^a-zA-Z0-9]/g, '_')}_complete`;
  switch (shell) {
    case 'bash':
      // Words are split from COMP_LINE on blanks, not taken from COMP_WORDS, which bash also splits at ':'
      // (localhost:8090, SVC:PORT); candidates then lose the part of the word up to its last ':', which bash keeps.
      return `# ${bin} completion for bash: source <(${bin} completion bash)
${fn}() {
  local line="\${COMP_LINE:0:COMP_POINT}" cur colon i
  local -a words
  read -ra words <<< "$line"
  [[ -z "$line" || "$line" =~ [[:space:]]$ ]] && words+=("")
  cur="\${words[\${#words[@]}-1]}"
  local IFS=$'\\n'
  COMPREPLY=($(${bin} ${COMPLETE_COMMAND} "\${words[@]:1}" 2>/dev/null))
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    colon="\${cur%"\${cur##*:}"}"
    for i in "\${!COMPREPLY[@]}"; do COMPREPLY[i]="\${COMPREPLY[i]#"$colon"}"; done
  fi
}
complete -o default -F ${fn} ${bin}
`;
    case 'zsh':
      return `#compdef ${bin}
# ${bin} completion for zsh: source <(${bin} completion zsh)   (after compinit)
${fn}() {
  local -a candidates
  candidates=("\${(@f)$(${bin} ${COMPLETE_COMMAND} "\${(@)words[2,$CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef ${fn} ${bin}
`;
    case 'fish':
      return `# ${bin} completion for fish: ${bin} completion fish | source
function ${fn}
    set -l words (commandline -opc)
    set -e words[1]
    set -l current (commandline -ct)
    ${bin} ${COMPLETE_COMMAND} $words "$current" 2>/dev/null
end
complete -c ${bin} -f -a '(${fn})'
`;
  }
}

/**
 * Adds `completion bash|zsh|fish` (prints the script) and the hidden `__complete` the scripts call. `__complete`
 * reads its words raw, so flags being completed are never parsed as its own options.
 */
export function addCompletion(program: Command, bin: string): void {
  program
    .command('completion')
    .description('print a shell completion script (commands, flags, and resource names from the cluster)')
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText('after', exampleText([
      `source <(${bin} completion bash)                 # this shell; add the line to ~/.bashrc to keep it`,
      `${bin} completion zsh > "\${fpath[1]}/_${bin}"      # zsh, then start a new shell`,
      `${bin} completion fish > ~/.config/fish/completions/${bin}.fish`,
    ]))
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new OcteliumError('INVALID_ARGUMENT', `unknown shell "${shell}" (use ${SHELLS.join(', ')})`);
      }
      process.stdout.write(completionScript(bin, shell as Shell));
    });
  program
    .command(COMPLETE_COMMAND, { hidden: true })
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[words...]')
    .action(async () => {
      // Every word after `__complete`, untouched by commander's option parsing.
      const argv = process.argv;
      const words = argv.slice(argv.indexOf(COMPLETE_COMMAND) + 1);
      for (const c of await completeWords(program, words)) console.log(c);
    });
}

/**
 * Names of `kind` from the cluster, for completers: the same domain and credentials as the command being typed
 * (`--domain` / `--context` on the line, the environment, the stored login).
 */
export async function apiNames(kind: KindName, opts: Record<string, string>, query?: Record<string, string | undefined>): Promise<string[]> {
  const client = await authenticatedClient({ domain: opts.domain, context: opts.context });
  return (await client.list(kind, query)).items.map((r) => r.metadata.name);
}

/** Kind names and aliases as `get`/`delete` take them: `service svc user …`. */
export function kindWords(): string[] {
  return Object.values(KINDS).flatMap((k) => k.aliases);
}

/** Context names (stored logins), for `--context` and `octelium context use`. */
export function contextNames(): string[] {
  return listLogins().map((l) => l.domain);
}
