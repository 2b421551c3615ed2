// Embeddings on the generation path: reserved for the inputs' worst case before the engine runs,
// settled for exactly the tokens it embedded.
import { toApiError } from "../http/errors.ts";
import type { ModelInfo } from "../inference/types.ts";
import { refuseUnfittable } from "../inference/fits.ts";
import type { Cost, Principal } from "../platform/service.ts";
import { RequestBilling } from "./billing.ts";
import type { GenerationDeps } from "./deps.ts";

export interface Embedded {
  vectors: Float32Array[];
  promptTokens: number;
  cost: Cost | null;
}

export async function embedInputs(deps: GenerationDeps, o: { model: ModelInfo; inputs: (string | number[])[]; principal: Principal | null; maxCoefficient?: number }): Promise<Embedded> {
  // An input that cannot fit is refused here, before the engine tokenizes anything.
  try {
    o.inputs.forEach((x, i) => typeof x === "string" && refuseUnfittable(Buffer.byteLength(x), o.model, "input", `input[${i}]`));
  } catch (err) {
    throw toApiError(err);
  }
  // Each token covers at least one byte of text; token-id inputs are their own count.
  const upper = o.inputs.reduce((n, x) => n + (typeof x === "string" ? Buffer.byteLength(x) + 2 : x.length), 0);
  const billing = await RequestBilling.start(deps.platform, o.principal, {}, o.model, "embedding", null, upper);
  let result;
  try {
    result = await deps.engine.embed(o.model.id, o.inputs, { maxCoefficient: o.maxCoefficient });
  } catch (err) {
    await billing?.settleTokens(0).catch(() => {});
    throw toApiError(err);
  }
  const cost = billing ? await billing.settleTokens(result.promptTokens) : null;
  return { vectors: result.vectors, promptTokens: result.promptTokens, cost };
}
