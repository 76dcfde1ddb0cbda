// `npm run demo`: runs the compiled demo (cluster + demo MCP server) from dist/, which scripts/install.mjs built.
import { spawn } from 'node:child_process';
const child = spawn(process.execPath, ['packages/cluster/dist/demo/run-demo.js'], { stdio: 'inherit', cwd: new URL('..', import.meta.url).pathname });
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
child.on('exit', (code) => process.exit(code ?? 0));
