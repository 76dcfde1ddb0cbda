/**
 * kubectl-style comforts, through the real binaries and real shells: --help examples and exit codes, shell completion
 * (bash, with resource names from a running cluster), NO_COLOR under a terminal, and contexts for several clusters.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT, runBin, service, startTestCluster, tempDir, type TestCluster } from '@octelium-ts/cluster/testing';
import { buildProgram as buildCtl } from '../src/program.js';
import { buildProgram as buildOctelium } from '../../connect/src/program.js';

let a: TestCluster;
let b: TestCluster;
let home: string;

const bootstrap = (tc: TestCluster) => readFileSync(join(tc.dataDir, 'bootstrap-token'), 'utf8').trim();
/** No domain or token from the environment: only what is stored in `home` (contexts) or given on the line. */
const env = (extra: Record<string, string> = {}) => ({ HOME: home, OCTELIUM_DOMAIN: '', OCTELIUM_ACCESS_TOKEN: '', OCTELIUM_AUTH_TOKEN: '', ...extra });

before(async () => {
  [a, b] = await Promise.all([startTestCluster(), startTestCluster()]);
  await a.api.apply({ resources: [service('only-on-a', { config: { upstream: { url: 'http://127.0.0.1:9' } } }), service('also-on-a', { config: { upstream: { url: 'http://127.0.0.1:9' } } })] });
  await b.api.apply({ resources: [service('only-on-b', { config: { upstream: { url: 'http://127.0.0.1:9' } } })] });
  home = tempDir('octelium-home-');
  for (const tc of [a, b]) {
    const r = await runBin('octelium', ['login', '--domain', tc.cluster.domain, '--auth-token', bootstrap(tc)], { env: env() });
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await Promise.all([a.close(), b.close()]);
});

/** Every visible command of a program, with its path (`create credential`). */
function commands(program: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  const out = [{ path, cmd: program }];
  for (const c of program.commands) {
    if ((c as Command & { _hidden?: boolean })._hidden || c.name() === 'help') continue;
    out.push(...commands(c, [...path, c.name()]));
  }
  return out;
}

function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

describe('--help', () => {
  test('every command of octeliumctl and octelium shows examples; the top level lists the exit codes', () => {
    for (const [bin, build] of [['octeliumctl', buildCtl], ['octelium', buildOctelium]] as const) {
      const all = commands(build());
      assert.ok(all.length >= 8, `${bin}: ${all.length} commands`);
      for (const { path, cmd } of all) {
        const help = helpOf(cmd);
        assert.match(help, /\nExamples:\n {2}\$ \S+/, `${bin} ${path.join(' ')} --help has examples`);
      }
      const top = helpOf(build());
      for (const code of ['0', '1', '3', '4', '70']) assert.match(top, new RegExp(`\\n {2}${code} +\\S`), `${bin}: exit code ${code}`);
    }
  });
});

/** Completion as a person gets it: bash sources the script and runs it for LINE with the cursor at its end. */
async function bashComplete(bin: 'octeliumctl' | 'octelium', line: string, extraEnv: Record<string, string> = {}): Promise<string[]> {
  const script = join(tempDir(), 'completion.bash');
  const gen = await runBin(bin, ['completion', 'bash'], { env: env() });
  assert.equal(gen.code, 0, gen.stderr);
  writeFileSync(script, gen.stdout);
  const fn = `_${bin}_complete`;
  const program = `PATH="${join(REPO_ROOT, 'node_modules/.bin')}:$PATH"; source "${script}"; COMP_LINE="$1"; COMP_POINT=\${#COMP_LINE}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn('bash', ['--norc', '-c', program, 'bash', line], { env: { ...process.env, NODE_OPTIONS: '', ...env(extraEnv) } });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
  assert.equal(r.code, 0, r.err);
  return r.out.split('\n').filter(Boolean);
}

describe('shell completion (bash)', () => {
  test('commands, flags, kinds, resource names from the API, option values; zsh and fish scripts', async () => {
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl ge'), ['get']);
    assert.ok((await bashComplete('octeliumctl', 'octeliumctl ')).includes('completion'));
    assert.ok(!(await bashComplete('octeliumctl', 'octeliumctl ')).includes('__complete'), 'the hidden command stays hidden');
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl get se'), ['secret', 'sec', 'service', 'session', 'sess']);
    // Names come from the current context's cluster (b, logged in last), or the one --context / --domain names.
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl get svc '), ['only-on-b']);
    assert.deepEqual(await bashComplete('octeliumctl', `octeliumctl --context ${a.cluster.domain} get svc `), ['also-on-a', 'only-on-a']);
    assert.deepEqual(await bashComplete('octeliumctl', `octeliumctl --domain ${a.cluster.domain} delete service on`), ['only-on-a']);
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl get svc -o w'), ['wide']);
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl create cred x --type o'), ['oauth2']);
    assert.ok((await bashComplete('octeliumctl', 'octeliumctl logs --user ')).includes('root'));
    assert.ok((await bashComplete('octeliumctl', 'octeliumctl logs --f')).includes('--follow'));
    // A context name has a ':' (host:port), where bash splits words: the reply completes the part after it.
    const port = a.cluster.domain.split(':')[1];
    assert.deepEqual(await bashComplete('octelium', `octelium context use ${a.cluster.domain.slice(0, -1)}`), [port]);
    assert.deepEqual(await bashComplete('octelium', 'octelium con'), ['connect', 'context']);
    // Cluster down: completion offers nothing, quickly, and never prints an error into the command line.
    const t0 = Date.now();
    assert.deepEqual(await bashComplete('octeliumctl', 'octeliumctl --domain localhost:1 get svc '), []);
    assert.ok(Date.now() - t0 < 5000);
    for (const shell of ['zsh', 'fish']) {
      const r = await runBin('octeliumctl', ['completion', shell], { env: env() });
      assert.equal(r.code, 0);
      assert.match(r.stdout, /octeliumctl __complete/);
    }
    const bad = await runBin('octeliumctl', ['completion', 'tcsh'], { env: env() });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown shell "tcsh" \(use bash, zsh, fish\)/);
  });
});

/** `octeliumctl logs -f` on a real terminal (script(1) gives it a pty) for a moment; returns what it drew. */
function onTerminal(extraEnv: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const cmd = `${join(REPO_ROOT, 'node_modules/.bin/octeliumctl')} logs -f`;
    // A person's terminal, not CI: ink draws nothing live when it detects CI (is-in-ci looks for CI and friends).
    const termEnv: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: '', TERM: 'xterm-256color', ...env(extraEnv) };
    for (const k of ['CI', 'CONTINUOUS_INTEGRATION', 'BUILD_NUMBER', 'RUN_ID']) delete termEnv[k];
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: termEnv });
    let out = '';
    // Stop once the view has drawn its header (and a moment more for the rest of the frame), or after 20 s: a fixed
    // wait was too short on a loaded machine, where loading the live view (ink, React) alone takes seconds.
    let stopping: NodeJS.Timeout | undefined;
    p.stdout.on('data', (d) => {
      out += d;
      if (!stopping && /TIME/.test(out)) stopping = setTimeout(() => p.kill('SIGTERM'), 300);
    });
    const giveUp = setTimeout(() => p.kill('SIGTERM'), 20_000);
    p.on('close', () => {
      clearTimeout(giveUp);
      clearTimeout(stopping);
      resolve(out);
    });
  });
}

describe('NO_COLOR', () => {
  test('the live view is coloured on a terminal, and not at all with NO_COLOR set', async () => {
    const sgr = /\x1b\[[0-9;]*m/;
    const coloured = await onTerminal({ FORCE_COLOR: '' });
    assert.match(coloured, /TIME/, coloured);
    assert.match(coloured, sgr, 'bold header on a terminal');
    const plain = await onTerminal({ NO_COLOR: '1' });
    assert.match(plain, /TIME/, plain);
    assert.doesNotMatch(plain, sgr);
  });
});

describe('contexts', () => {
  test('list and use stored logins; --context picks one; --domain and OCTELIUM_DOMAIN win over it', async () => {
    const list = await runBin('octelium', ['context', 'list', '-o', 'json'], { env: env() });
    const contexts = JSON.parse(list.stdout) as Array<{ name: string; current: boolean; user: string }>;
    assert.deepEqual(contexts.map((c) => c.name).sort(), [a.cluster.domain, b.cluster.domain].sort());
    assert.deepEqual(contexts.filter((c) => c.current).map((c) => c.name), [b.cluster.domain], 'the last login is current');
    const table = await runBin('octelium', ['context', 'list'], { env: env() });
    assert.match(table.stdout, new RegExp(`^\\*\\s+${b.cluster.domain}\\s+root\\s`, 'm'));

    const svcNames = async (args: string[], extra: Record<string, string> = {}) => {
      const r = await runBin('octeliumctl', [...args, 'get', 'svc', '-o', 'json'], { env: env(extra) });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string } }> }).items.map((s) => s.metadata.name).sort();
    };
    assert.deepEqual(await svcNames([]), ['only-on-b']);
    assert.deepEqual(await svcNames(['--context', a.cluster.domain]), ['also-on-a', 'only-on-a']);
    assert.deepEqual(await svcNames(['--context', a.cluster.domain, '--domain', b.cluster.domain]), ['only-on-b'], '--domain wins');
    assert.deepEqual(await svcNames(['--context', a.cluster.domain], { OCTELIUM_DOMAIN: b.cluster.domain }), ['only-on-b'], 'OCTELIUM_DOMAIN wins');

    const use = await runBin('octelium', ['context', 'use', a.cluster.domain], { env: env() });
    assert.equal(use.code, 0, use.stderr);
    assert.deepEqual(await svcNames([]), ['also-on-a', 'only-on-a']);
    const status = JSON.parse((await runBin('octelium', ['status', '-o', 'json'], { env: env() })).stdout);
    assert.equal(status.cluster.domain, a.cluster.domain);
    assert.equal(JSON.parse((await runBin('octelium', ['--context', b.cluster.domain, 'status', '-o', 'json'], { env: env() })).stdout).cluster.domain, b.cluster.domain);

    const unknown = await runBin('octeliumctl', ['--context', 'nope:1', 'get', 'svc'], { env: env() });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no context "nope:1": contexts are the clusters you are logged in to \(.*localhost:\d+.*\)/);
    assert.equal((await runBin('octelium', ['context', 'use', 'nope:1'], { env: env() })).code, 1);
  });
});
