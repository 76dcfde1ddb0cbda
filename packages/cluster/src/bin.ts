import { Command } from 'commander';
import { resolve } from 'node:path';
import { startCluster } from './cluster.js';

const program = new Command('octelium-cluster').description('octelium-ts cluster: control-plane API, gateway, OAuth2 and tunnel hub in one process');

program
  .command('start')
  .description('start the cluster on embedded SQLite')
  .option('--data-dir <dir>', 'data directory (SQLite file, bootstrap token)', './.octelium')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'listen port (0 = ephemeral)', '8090')
  .option('--domain <d>', "the cluster's public host name", 'localhost')
  .action(async (o: { dataDir: string; host: string; port: string; domain: string }) => {
    const dataDir = resolve(o.dataDir);
    const cluster = await startCluster({ dataDir, host: o.host, port: Number(o.port), domain: o.domain });
    if (cluster.bootstrapToken) {
      console.log(`Bootstrap auth token for user "root" (also in ${dataDir}/bootstrap-token; shown once):\n\n  ${cluster.bootstrapToken}\n`);
      console.log(`Next: npx octelium login --domain ${cluster.domain} --auth-token $(cat ${dataDir}/bootstrap-token)\n`);
    }
    console.log(`octelium-cluster listening on ${cluster.url} (domain ${cluster.domain}, data ${dataDir})`);
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await cluster.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

await program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`octelium-cluster: ${err.message}`);
  process.exit(1);
});
