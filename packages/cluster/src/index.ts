export { startCluster, type Cluster, type ClusterOptions } from './cluster.js';
export { openDatabase } from './store/db.js';
export { ResourceStore } from './store/resource-store.js';
