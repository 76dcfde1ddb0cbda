// `npm run demo`: runs the TypeScript demo (cluster + demo MCP server) through tsx, no build step.
import { spawn } from 'node:child_process';
const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cluster/src/demo/run-demo.ts'], { stdio: 'inherit', cwd: new URL('..', import.meta.url).pathname });
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
child.on('exit', (code) => process.exit(code ?? 0));
