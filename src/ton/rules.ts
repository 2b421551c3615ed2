// The credit rules for one transaction of the service wallet, following TON's payment-processing
// guidance: only a plain, kept, inbound transfer with a known deposit code is credited automatically.
import type { Address } from "@ton/core";
import type { ChainTransaction } from "./client.ts";
import { readBody } from "./comment.ts";

/** Not a deposit at all: no money arrived and stayed, so there is nothing to credit or assign. */
export type IgnoredReason =
  | "not_this_wallet" // the API served another account's transaction
  | "not_ordinary" // tick-tock, storage, split/merge: no inbound transfer
  | "no_inbound_message"
  | "external_message" // the wallet's own outgoing transfer, signed by its key
  | "bounced" // our own transfer coming back
  | "has_out_messages" // the value left again (a bounce-back to the sender)
  | "zero_value";

/** Money arrived and stayed, but we cannot tell whose it is: kept for an admin to assign. */
export type UnmatchedReason = "undecodable" | "below_minimum" | "no_comment" | "empty_comment" | "encrypted_comment" | "binary_comment" | "invalid_comment" | "unknown_code";

export interface Facts {
  sender: string | null;
  amount: bigint;
  comment: string | null;
  /** Unix ms. */
  chainTime: number;
}

export type Decision = Facts &
  ({ status: "ignored"; reason: IgnoredReason } | { status: "unmatched"; reason: UnmatchedReason } | { status: "credit"; reason: "matched"; accountId: number });

const MAX_COMMENT = 512;

/**
 * Decides what `t` is for `wallet`. `accountFor` maps a comment to an account id (normalizing it),
 * or null; `minimum` is the smallest amount credited automatically, in nanoton.
 */
export function decide(t: ChainTransaction, wallet: Address, minimum: bigint, accountFor: (comment: string) => number | null): Decision {
  try {
    return decideStrict(t, wallet, minimum, accountFor);
  } catch {
    // A transaction we cannot take apart must not block every deposit after it (the watcher would
    // retry it forever): it is kept for an admin, with whatever amount and sender can be read.
    return { ...factsOf(t), status: "unmatched", reason: "undecodable" };
  }
}

/** Who sent how much and when, as far as the inbound message says (no comment yet). */
function factsOf(t: ChainTransaction): Facts {
  const info = t.tx.inMessage?.info;
  const internal = info?.type === "internal" ? info : null;
  return { sender: internal ? internal.src.toRawString() : null, amount: internal ? internal.value.coins : 0n, comment: null, chainTime: t.tx.now * 1000 };
}

function decideStrict(t: ChainTransaction, wallet: Address, minimum: bigint, accountFor: (comment: string) => number | null): Decision {
  const tx = t.tx;
  const msg = tx.inMessage ?? null;
  const info = msg?.info;
  const internal = info?.type === "internal" ? info : null;
  const facts = factsOf(t);
  const ignored = (reason: IgnoredReason): Decision => ({ ...facts, status: "ignored", reason });
  const unmatched = (reason: UnmatchedReason): Decision => ({ ...facts, status: "unmatched", reason });

  if (tx.address !== BigInt(`0x${wallet.hash.toString("hex")}`)) return ignored("not_this_wallet");
  if (tx.description.type !== "generic") return ignored("not_ordinary");
  if (!msg || !info) return ignored("no_inbound_message");
  if (!internal) return ignored("external_message");
  if (!internal.dest.equals(wallet)) return ignored("not_this_wallet");
  if (internal.bounced) return ignored("bounced");
  if (tx.outMessagesCount > 0 || tx.outMessages.size > 0) return ignored("has_out_messages");
  if (internal.value.coins <= 0n) return ignored("zero_value");

  const body = readBody(msg.body);
  switch (body.kind) {
    case "empty":
      return unmatched("no_comment");
    case "encrypted":
      return unmatched("encrypted_comment");
    case "binary":
      return unmatched("binary_comment");
    case "invalid_text":
      return unmatched("invalid_comment");
    case "text":
      break;
  }
  const text = body.text.trim();
  facts.comment = text.length > MAX_COMMENT ? text.slice(0, MAX_COMMENT) : text;
  if (text === "") return unmatched("empty_comment");
  const accountId = accountFor(text);
  if (accountId === null) return unmatched("unknown_code");
  if (internal.value.coins < minimum) return unmatched("below_minimum");
  return { ...facts, status: "credit", reason: "matched", accountId };
}
