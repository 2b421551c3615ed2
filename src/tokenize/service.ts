// /tokenize and /detokenize logic: the engine's tokenizer through its async API (the worker owns the
// model), with llama-server's defaults and its piece format.
import type { Backend } from "../generation/backend.ts";
import { toApiError } from "../http/errors.ts";
import type { DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse } from "./model.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A piece as llama-server shows it: its text, or its bytes when they are not whole UTF-8 characters. */
export function pieceOf(bytes: number[]): string | number[] {
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return bytes;
  }
}

export async function tokenize(engine: Backend, body: TokenizeRequest): Promise<TokenizeResponse> {
  try {
    const tokens = await engine.tokenize(body.model, body.content, { addSpecial: body.add_special ?? false, parseSpecial: body.parse_special ?? true });
    if (!body.with_pieces) return { tokens };
    const pieces = await engine.pieces(body.model, tokens);
    return { tokens: tokens.map((id, i) => ({ id, piece: pieceOf(pieces[i]!) })) };
  } catch (err) {
    throw toApiError(err);
  }
}

export async function detokenize(engine: Backend, body: DetokenizeRequest): Promise<DetokenizeResponse> {
  try {
    return { content: await engine.detokenize(body.model, body.tokens) };
  } catch (err) {
    throw toApiError(err);
  }
}
