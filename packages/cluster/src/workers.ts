import nodeCluster from 'node:cluster';

/**
 * `octelium-cluster start --workers N` (design.md §9): the primary process only supervises; N workers run the whole
 * cluster, share the listening port (node:cluster hands each accepted connection to a worker) and one store
 * (SQLite in WAL mode, or PostgreSQL). What one worker writes reaches its siblings through the store's change
 * feed, and tunnel agents held by one worker serve requests accepted by another (src/replicas/).
 *
 * A worker that dies is replaced (after a second, so a crash loop cannot spin). One that fails before it ever
 * listened is a configuration error (store down, port in use): then everything stops and the primary exits 1.
 */
export function superviseWorkers(count: number, log: (msg: string) => void = (m) => console.error(m)): void {
  let stopping = false;
  let listened = false;
  const fork = () => nodeCluster.fork({ OCTELIUM_WORKERS: String(count) });
  nodeCluster.on('listening', () => {
    listened = true;
  });
  nodeCluster.on('exit', (worker, code, signal) => {
    const alive = Object.keys(nodeCluster.workers ?? {}).length;
    if (stopping) {
      if (alive === 0) process.exit(process.exitCode ?? 0);
      return;
    }
    if (!listened) {
      log(`octelium-cluster: worker ${worker.process.pid} failed to start (exit ${code ?? signal}); stopping`);
      stopping = true;
      for (const w of Object.values(nodeCluster.workers ?? {})) w?.process.kill('SIGTERM');
      if (alive === 0) process.exit(1);
      process.exitCode = 1;
      return;
    }
    log(`octelium-cluster: worker ${worker.process.pid} exited (${code ?? signal}); starting a new one`);
    setTimeout(() => !stopping && fork(), 1000).unref();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(nodeCluster.workers ?? {});
    if (!workers.length) process.exit(0);
    for (const w of workers) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < count; i++) fork();
}
