// The keys of the caller's own account: list them, add one (same balance) with limits, change a
// key's limits, revoke one. A key with limits of its own manages no keys: it could mint an unlimited one.
import { ApiError } from "../../http/errors.ts";
import { keyPage } from "../keys.ts";
import { isRestricted } from "../limits.ts";
import { ApiKeyInfo, ApiKeyList, CreatedKey, CreateKeyRequest, KeyLimitsRequest, KeyListQuery, RevokedKey } from "../model.ts";
import { changeKeyLimits, createKeyWithLimits, keyById, revokeAndRead, type LimitActor } from "../operations.ts";
import type { Principal } from "../service.ts";
import { keyFields, keyInfo, parseId, revokedKey } from "../wire.ts";
import { AUTH_NOTE, callerOf, keyErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

const LIMITS_NOTE =
  "Limits (LiteLLM's names): `max_budget_ton` (lifetime), `period_budget_ton` with `budget_duration` (day, week or month, UTC), `rpm_limit`, `tpm_limit`, `rpd_limit` " +
  "(never above the account's own), `max_parallel_requests`, and `expires_at` or `duration` (\"30d\"). Only a key without limits of its own may create or change keys (403 otherwise).";

/** The caller as the actor of a limit change: an unrestricted key of its account, capped by the account's rate limits. */
function accountActor(p: Principal): LimitActor & { kind: "account" } {
  if (p.keyLimits && isRestricted(p.keyLimits)) {
    throw new ApiError("forbidden", "This API key has limits of its own, so it cannot create or change keys (it could make one without them); use a key without limits.");
  }
  return { kind: "account", accountId: p.accountId, ceiling: p.accountLimits ?? p.limits };
}

export function keyRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const db = deps.platform.store;
  return routeFile("platform-keys", auth)
    .model({ ApiKeyList, ApiKeyInfo, CreatedKey, RevokedKey, KeyLimitsRequest })
    .get(
      "/v1/keys",
      async ({ principal, query }) => {
        const caller = callerOf(principal);
        const page = await keyPage(db, caller.accountId, { limit: query.limit ?? 100, after: query.after ?? null });
        const data = page.data.map((k) => keyInfo(k, caller.keyId));
        return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
      },
      {
        auth: "account",
        query: KeyListQuery,
        response: { 200: "ApiKeyList", 400: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Authentication"],
          summary: "List your account's keys",
          description: `The caller's account's keys in creation order, revoked ones included, with limits and spend; never the key itself. A page at a time (OpenAI's list shape: \`limit\`, \`after\`, \`has_more\`). ${AUTH_NOTE}`,
        },
      },
    )
    .post(
      "/v1/account/keys",
      async ({ principal, body, set }) => {
        const caller = callerOf(principal);
        const { name, ...limits } = body ?? {};
        const made = await createKeyWithLimits(db, accountActor(caller), caller.accountId, name ?? null, limits);
        set.status = 201;
        return { ...keyFields(made.info), api_key: made.key, account_id: caller.accountId };
      },
      {
        auth: "account",
        body: CreateKeyRequest,
        parse: "json",
        response: { 201: "CreatedKey", 400: "ErrorResponse", 403: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Authentication"],
          summary: "Create a key for your account",
          description: `Another key for the caller's account (same balance), optionally with limits; shown only once. ${LIMITS_NOTE} ${AUTH_NOTE}`,
        },
      },
    )
    .patch(
      "/v1/account/keys/:id",
      async ({ principal, params, body }) => {
        const caller = callerOf(principal);
        const id = parseId(params.id);
        const k = id === null ? null : await changeKeyLimits(db, accountActor(caller), id, body);
        if (!k) throw new ApiError("not_found", `No key ${params.id} in this account.`, "id");
        return keyInfo(k, caller.keyId);
      },
      {
        auth: "account",
        body: "KeyLimitsRequest",
        parse: "json",
        response: { 200: "ApiKeyInfo", 400: "ErrorResponse", 403: "ErrorResponse", 404: "ErrorResponse", ...keyErrors },
        detail: { tags: ["Authentication"], summary: "Change a key's limits", description: `Sets or clears limits of one of the account's keys. ${LIMITS_NOTE} ${AUTH_NOTE}` },
      },
    )
    .delete(
      "/v1/account/keys/:id",
      async ({ principal, params }) => {
        const caller = callerOf(principal);
        const id = parseId(params.id);
        const k = id === null ? null : await keyById(db, id);
        if (!k || k.accountId !== caller.accountId) throw new ApiError("not_found", `No key ${params.id} in this account.`, "id");
        return revokedKey(await revokeAndRead(db, caller.accountId, k.id));
      },
      {
        auth: "account",
        response: { 200: "RevokedKey", 404: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Authentication"],
          summary: "Revoke a key of your account",
          description: `Revokes one of the caller's account's keys (the calling key too, if asked); revoking it again answers the first revocation. 404 for other accounts' keys. ${AUTH_NOTE}`,
        },
      },
    );
}
