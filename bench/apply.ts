/**
 * Apply 1 000 Services as one multi-document YAML file through the real CLI path (parse + validate +
 * one API call + one SQLite transaction), against a cluster on a fresh data dir. Target: < 2 s.
 * Baseline in the same run: the same 1 000 Services applied a second time (all `unchanged`).
 *   node --import tsx bench/apply.ts [count]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBin, startTestCluster, tempDir } from '@octelium-ts/cluster/testing';
import { yamlOf } from './lib/control-plane.js';

const count = Number(process.argv[2] ?? 1000);
const tc = await startTestCluster();
const file = join(tempDir(), 'services.yaml');
writeFileSync(file, yamlOf('svc', count));
const env = { OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: tc.adminToken };

async function timed(label: string): Promise<number> {
  const t0 = performance.now();
  const r = await runBin('octeliumctl', ['apply', file], { env });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(r.stderr);
  const lines = r.stdout.trim().split('\n');
  console.log(`${label}: ${lines.length} resources in ${ms.toFixed(0)} ms (${lines[0]})`);
  return ms;
}
const create = await timed(`apply ${count} new Services`);
const again = await timed(`re-apply ${count} unchanged`);
const t0 = performance.now();
await runBin('octeliumctl', ['--version'], { env });
const startup = performance.now() - t0;
console.log(`octeliumctl process startup alone: ${startup.toFixed(0)} ms`);
console.log(`result: create ${create.toFixed(0)} ms (target < 2000 ms: ${create < 2000 ? 'met' : 'MISSED'}); ratio create/unchanged ${(create / again).toFixed(2)}`);
await tc.close();
