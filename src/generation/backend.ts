// What the generation path and the front doors run models on: the local engine, or (on a gateway)
// the cluster of the local engine and the upstream workers. One interface, so billing, sessions and
// every API shape work the same on both.
import type { Engine, Generation } from "../inference/engine.ts";
import type { GenerateRequest, ModelInfo, ModelStats } from "../inference/types.ts";

/** How one request may be routed among workers (ignored by the local engine). */
export interface RouteHints {
  /** Cocoon's max_coefficient: no worker dearer than this (0 = no limit). */
  maxCoefficient?: number;
}

/** One worker's live load, as /v1/models' `workers[]` shows it (seed 001). */
export interface WorkerLoad {
  running_requests: number;
  max_running_requests: number;
}

export interface Backend {
  models(): ModelInfo[];
  model(id?: string): ModelInfo;
  stats(): ModelStats[];
  submit(request: GenerateRequest, signal?: AbortSignal, route?: RouteHints): Generation;
  embed(model: string | undefined, inputs: (string | number[])[], route?: RouteHints): ReturnType<Engine["embed"]>;
  tokenize: Engine["tokenize"];
  detokenize: Engine["detokenize"];
  pieces: Engine["pieces"];
  render: Engine["render"];
  forgetSession: Engine["forgetSession"];
  /** Each worker of a model and its load; absent: the local engine's one worker per model. */
  workers?(model: string): WorkerLoad[];
}
