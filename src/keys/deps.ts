// What the operations on a key need: the master's settings, the index to read, the writer to
// append with, and the volumes. Plain data and objects, no HTTP: the native API, the S3 API and
// the offline tools (gc, rebalance) run the same operations.
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import type { MasterConfig } from '../config.js';

export interface KeyDeps {
  config: MasterConfig;
  index: IndexStore;
  writer: Writer;
  volumes: VolumeClient;
  logger: Logger;
}
