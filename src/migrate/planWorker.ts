/*
 * Worker thread of the migrator's planner pool (see planner.ts): holds codecs for one model's
 * fields and plans the batches it is sent. Errors other than per-value crypto failures (which
 * planRow reports as data) come back as messages naming no value.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { keyringFromSnapshot, plannedFields, planRows, type WorkerInit, type WorkerRequest, type WorkerResponse } from './planner';

const init = workerData as WorkerInit;
const fields = plannedFields(init.setup, keyringFromSnapshot(init.keys));

parentPort!.on('message', (req: WorkerRequest) => {
  let res: WorkerResponse;
  try {
    res = { id: req.id, rows: planRows(init.setup, fields, req.rows) };
  } catch (error) {
    res = { id: req.id, error: `planning failed in a worker thread: ${error instanceof Error ? error.name : 'error'}` };
  }
  parentPort!.postMessage(res);
});
