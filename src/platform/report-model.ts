// TypeBox schemas of the operator's reporting routes (issue 14): usage totals per day / account /
// model, the audit log, and one account with its keys. Money as in model.ts: integer nanoton.
import { t } from "elysia";
import { Type } from "@sinclair/typebox";
import { AdminAccount, Cost, UsageFilterFields } from "./model.ts";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

export const AdminUsageQuery = t.Object({
  group_by: t.Optional(t.String({ maxLength: 40, description: "Comma-separated groups among `day` (UTC), `account`, `model`; empty for grand totals. Defaults to `day,account,model`." })),
  account_id: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 53 - 1, description: "Only this account's requests." })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 10_000, description: "Rows per page (JSON). Defaults to 1000." })),
  // Bounded as /admin/accounts' offset: past 2^63 a number no longer binds as an SQL integer.
  offset: t.Optional(t.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: "Rows to skip (JSON). Defaults to 0." })),
  ...UsageFilterFields,
});

export const UsageTotals = t.Object({
  day: Nullable(t.String({ description: "UTC day (YYYY-MM-DD); null unless grouped by day." })),
  account_id: Nullable(Type.Integer({ description: "Null unless grouped by account." })),
  model: Nullable(t.String({ description: "Null unless grouped by model." })),
  requests: Type.Integer(),
  prompt_tokens: Type.Integer(),
  cached_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  reasoning_tokens: Type.Integer(),
  total_tokens: Type.Integer(),
  cost: Cost,
});

export const UsageTotalsList = t.Object({
  object: t.Literal("list"),
  group_by: t.Array(t.String()),
  data: t.Array(UsageTotals, { description: "Ordered by day, account, model; a page of `limit` rows from `offset`." }),
  totals: UsageTotals,
  total: Type.Integer({ description: "Rows in all (every page)." }),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

export const AuditQuery = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, description: "Entries per page. Defaults to 50." })),
  before: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 53 - 1, description: "`next_before` of the previous page." })),
  account_id: t.Optional(t.Integer({ minimum: 1, maximum: 2 ** 53 - 1, description: "Only actions concerning this account." })),
  action: t.Optional(t.String({ maxLength: 100, description: "Only this action, e.g. `account.credit`." })),
  actor: t.Optional(t.String({ maxLength: 100, description: "Only this actor." })),
});

export const AuditEntry = t.Object({
  id: Type.Integer(),
  created_at: t.String({ format: "date-time" }),
  actor: t.String({ description: "Who: the `X-Cocoon-Actor` header of the admin request (\"admin\" without one), a deposit's `assigned_by`, or \"cli\"." }),
  action: t.String({ description: "account.credit, account.debit, key.revoke, key.limits, deposit.assign, ..." }),
  object_type: t.String({ description: "account, key or deposit." }),
  object_id: t.String(),
  account_id: Nullable(Type.Integer()),
  reason: Nullable(t.String()),
  before: t.Unknown({ description: "The changed values before (JSON), or null." }),
  after: t.Unknown({ description: "The changed values after (JSON), or null." }),
});

export const AuditList = t.Object({
  object: t.Literal("list"),
  data: t.Array(AuditEntry, { description: "Newest first." }),
  has_more: t.Boolean(),
  next_before: Nullable(Type.Integer({ description: "Pass as `before` for the next page; null on the last page." })),
});

export const AdminKey = t.Object({
  id: Type.Integer(),
  prefix: t.String(),
  name: Nullable(t.String()),
  created_at: t.String({ format: "date-time" }),
  revoked_at: Nullable(t.String({ format: "date-time" })),
  last_used_at: Nullable(t.String({ format: "date-time" })),
  limits: t.Record(t.String(), t.Unknown(), { description: "The key's own limits (null: the server default)." }),
});

export const AdminAccountDetail = t.Object({ ...AdminAccount.properties, keys: t.Array(AdminKey) });
