// Masters sharing one JetStream stream, as the e2e tests run them:
//
//   mkv server --db root/<name> --replicas 2 --log nats://…/<STREAM>  (each master a process)
//        │                                    │
//        ▼                                    ▼
//   three embedded volume servers        nats-server: one node, or a three-node cluster
import { join } from 'node:path';
import { removeDir, spawnMaster, startVolumes, stopMaster, tempDir, type MkvProcess, type VolumeSet } from './cluster.js';
import { startNats, startNatsCluster, type NatsCluster, type NatsServer } from './nats.js';

export interface SharedStream<Nats> {
  nats: Nats;
  set: VolumeSet;
  /** Where the masters' dbs are. */
  root: string;
  /** The db directory of the master called `name`. */
  db(name: string): string;
  /** `mkv server` flags for the master `name` on `stream` (the URL's default stream when not given), then `extra`. */
  args(name: string, stream?: string, ...extra: string[]): string[];
  /** Spawns the master `name` (mkv server with args()); close() stops it if the test did not. */
  spawn(name: string, stream?: string, ...extra: string[]): Promise<MkvProcess>;
  /** Stops the masters still running, the volumes and NATS; removes the dbs. */
  close(): Promise<void>;
}

async function around<Nats extends { url: string }>(
  nats: Nats,
  stopNats: () => Promise<void>,
  prefix: string,
): Promise<SharedStream<Nats>> {
  const set = await startVolumes('embedded', 3);
  const root = tempDir(prefix);
  const masters = new Set<MkvProcess>();
  const db = (name: string) => join(root, name);
  const args = (name: string, stream?: string, ...extra: string[]) => [
    '--db',
    db(name),
    '--volumes',
    set.volumes.join(','),
    '--replicas',
    '2',
    '--log',
    stream === undefined ? nats.url : `${nats.url}/${stream}`,
    ...extra,
  ];
  return {
    nats,
    set,
    root,
    db,
    args,
    async spawn(name, stream, ...extra) {
      const master = await spawnMaster(args(name, stream, ...extra));
      masters.add(master);
      return master;
    },
    async close() {
      // Masters first: one whose NATS is gone waits for it while it shuts down.
      for (const master of masters) await stopMaster(master);
      await set.close();
      await stopNats();
      removeDir(root);
    },
  };
}

/** One nats-server (which a test may freeze), three volumes, a temp dir for the masters' dbs. */
export async function startSharedStream(prefix = 'mkv-stream-'): Promise<SharedStream<NatsServer>> {
  const nats = await startNats();
  return around(nats, () => nats.stop(), prefix);
}

/** The same on a three-node JetStream cluster (its URL lists every node). */
export async function startSharedStreamCluster(prefix = 'mkv-stream-cluster-'): Promise<SharedStream<NatsCluster>> {
  const cluster = await startNatsCluster();
  return around(cluster, () => cluster.close(), prefix);
}
