// TypeBox schemas of the deposit routes: the caller's deposits and the admin view (list, assign).
// Money is integer nanoton as JSON numbers plus the same as an exact TON string.
import { t } from "elysia";
import { Type } from "@sinclair/typebox";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);
const Timestamp = (description: string) => t.String({ format: "date-time", description });

const depositFields = {
  tx_hash: t.String({ description: "The transaction's hash, hex (what the ledger's deposit row references)." }),
  tx_lt: t.String({ description: "The transaction's logical time on the wallet (a 64-bit integer, as a string)." }),
  sender: Nullable(t.String({ description: "The sender's address, raw form (workchain:hex)." })),
  amount_nanoton: Type.Integer(),
  amount_ton: t.String({ description: "The same in TON, an exact decimal." }),
  comment: Nullable(t.String({ description: "The transfer's text comment as sent (trimmed), if it had one." })),
  time: Timestamp("When the transaction happened on chain."),
  credited_at: Nullable(Timestamp("When the account was credited.")),
};

export const UserDeposit = t.Object(depositFields);
export const UserDepositList = t.Object({
  object: t.Literal("list"),
  data: t.Array(UserDeposit, { description: "Newest first." }),
  has_more: t.Boolean(),
  next_before: Nullable(t.String({ description: "Pass as `before` for the next page (a tx_lt); null on the last page." })),
});

export const AdminDeposit = t.Object({
  ...depositFields,
  status: t.Union([t.Literal("credited"), t.Literal("unmatched"), t.Literal("ignored")], {
    description: "'credited': booked to `account_id`; 'unmatched': money arrived but matched no account (an admin may assign it); 'ignored': no money stayed (bounced, bounced back, zero value, the wallet's own transfers).",
  }),
  reason: t.String({
    description:
      "'matched', or why it was not credited automatically: below_minimum, no_comment, empty_comment, encrypted_comment, binary_comment, invalid_comment, unknown_code; for ignored ones: bounced, has_out_messages, zero_value, external_message, no_inbound_message, not_ordinary, not_this_wallet.",
  }),
  account_id: Nullable(Type.Integer()),
  seen_at: Timestamp("When the watcher recorded it."),
  assigned_by: Nullable(t.String({ description: "Who assigned this unmatched transfer to an account." })),
  assign_note: Nullable(t.String({ description: "Why." })),
});

export const AdminDepositList = t.Object({
  object: t.Literal("list"),
  data: t.Array(AdminDeposit, { description: "Newest first." }),
  has_more: t.Boolean(),
  next_before: Nullable(t.String()),
  counts: t.Object({ credited: Type.Integer(), unmatched: Type.Integer(), ignored: Type.Integer() }, { description: "All recorded transactions by status." }),
});

const Before = t.String({ pattern: "^[0-9]{1,20}$", description: "`next_before` of the previous page." });

export const DepositsQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Defaults to 20." })),
  before: t.Optional(Before),
});

export const AdminDepositsQuery = t.Object({
  status: t.Optional(t.Union([t.Literal("credited"), t.Literal("unmatched"), t.Literal("ignored")], { description: "Only this status. Defaults to all." })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Defaults to 100." })),
  before: t.Optional(Before),
});

export const AssignRequest = t.Object(
  {
    account_id: Type.Integer({ minimum: 1, description: "The account to credit." }),
    reason: t.String({ minLength: 1, maxLength: 500, description: "Why this transfer belongs to that account (e.g. the customer's support ticket)." }),
    assigned_by: t.String({ minLength: 1, maxLength: 100, description: "Who decided (the operator's name): stored with the deposit and in the ledger note." }),
  },
  { examples: [{ account_id: 42, reason: "customer mistyped the memo, ticket #123", assigned_by: "alice" }] },
);

export const AssignResponse = t.Object({
  booked: t.Boolean({ description: "False when this transfer had already been assigned to this account (nothing changed)." }),
  deposit: AdminDeposit,
  balance_nanoton: Type.Integer({ description: "The account's balance after the credit." }),
});
