// Operator routes for limits (admin token): an account's keys with their limits and spend, a new key
// with limits for any account, a key's limits, and an account's own rate limits (binding all its keys).
// Every change goes through one function of operations.ts (createKeyWithLimits, changeKeyLimits,
// changeAccountLimits), which records it in the audit log in the same transaction.
import { ApiError } from "../../http/errors.ts";
import { actorOf } from "../audit.ts";
import { getAccount } from "../accounts.ts";
import { keyOffsetPage } from "../keys.ts";
import { AccountLimits, AccountLimitsRequest, AdminKeyInfo, AdminKeyList, AdminKeysQuery, CreatedKey, CreateKeyRequest, KeyLimitsRequest } from "../model.ts";
import { accountLimitOverrides, changeAccountLimits, changeKeyLimits, createKeyWithLimits } from "../operations.ts";
import { limitsFor } from "../ratelimit.ts";
import { adminKeyInfo, keyFields, parseId } from "../wire.ts";
import { ADMIN_NOTE, adminErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

/** The admin as the actor of a limit change, named by the request's X-Cocoon-Actor. */
const admin = (request: Request) => ({ kind: "admin", name: actorOf(request) }) as const;

export function adminLimitRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const { platform } = deps;
  const db = platform.store;
  const accountId = async (raw: string) => {
    const id = parseId(raw);
    if (id === null || !(await getAccount(db, id))) throw new ApiError("not_found", `No account ${raw}.`, "id");
    return id;
  };
  const limitsOf = async (id: number) => {
    const o = (await accountLimitOverrides(db, id))!;
    const l = limitsFor(o, platform.opts.rateLimits);
    return { account_id: id, rpm_limit: l.rpm, tpm_limit: l.tpm, rpd_limit: l.rpd, overrides: { rpm_limit: o.rpm, tpm_limit: o.tpm, rpd_limit: o.rpd } };
  };
  return routeFile("platform-admin-limits", auth)
    .model({ AdminKeyList, AdminKeyInfo, CreatedKey, KeyLimitsRequest, AccountLimits, AccountLimitsRequest })
    .get(
      "/admin/accounts/:id/keys",
      async ({ params, query }) => {
        const limit = query.limit ?? 100;
        const offset = query.offset ?? 0;
        const page = await keyOffsetPage(db, await accountId(params.id), { limit, offset });
        return { object: "list" as const, data: page.data.map(adminKeyInfo), total: page.total, limit, offset };
      },
      {
        auth: "admin",
        query: AdminKeysQuery,
        response: { 200: "AdminKeyList", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: { tags: ["Admin"], summary: "List an account's keys", description: `The account's keys in creation order with their limits and spend, a page at a time (\`limit\`, \`offset\`, \`total\` as in /admin/accounts). ${ADMIN_NOTE}` },
      },
    )
    .post(
      "/admin/accounts/:id/keys",
      async ({ params, body, set, request }) => {
        const id = await accountId(params.id);
        const { name, ...limits } = body ?? {};
        const made = await createKeyWithLimits(db, admin(request), id, name ?? null, limits);
        set.status = 201;
        return { ...keyFields(made.info), api_key: made.key, account_id: id };
      },
      {
        auth: "admin",
        body: CreateKeyRequest,
        parse: "json",
        response: { 201: "CreatedKey", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: { tags: ["Admin"], summary: "Create a key with limits for an account", description: `A new key of the account (shown once), with the limits given. ${ADMIN_NOTE}` },
      },
    )
    .patch(
      "/admin/keys/:id",
      async ({ params, body, request }) => {
        const id = parseId(params.id);
        const k = id === null ? null : await changeKeyLimits(db, admin(request), id, body);
        if (!k) throw new ApiError("not_found", `No key ${params.id}.`, "id");
        return adminKeyInfo(k);
      },
      {
        auth: "admin",
        body: "KeyLimitsRequest",
        parse: "json",
        response: { 200: "AdminKeyInfo", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Change a key's limits",
          description: `Sets (or with null clears) a key's budgets, expiry, rate limits and concurrency cap; only the fields given change. ${ADMIN_NOTE}`,
        },
      },
    )
    .get("/admin/accounts/:id/limits", async ({ params }) => limitsOf(await accountId(params.id)), {
      auth: "admin",
      response: { 200: "AccountLimits", 404: "ErrorResponse", ...adminErrors },
      detail: { tags: ["Admin"], summary: "An account's rate limits", description: `The limits in effect for the account (all its keys together) and its own overrides. ${ADMIN_NOTE}` },
    })
    .patch(
      "/admin/accounts/:id/limits",
      async ({ params, body, request }) => {
        const id = await accountId(params.id);
        await changeAccountLimits(db, id, { rpm: body.rpm_limit, tpm: body.tpm_limit, rpd: body.rpd_limit }, actorOf(request));
        return limitsOf(id);
      },
      {
        auth: "admin",
        body: "AccountLimitsRequest",
        parse: "json",
        response: { 200: "AccountLimits", 400: "ErrorResponse", 404: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Admin"],
          summary: "Set an account's rate limits",
          description: `Requests per minute, tokens per minute and requests per day of the whole account (null: the server's default); its keys may have lower ones. ${ADMIN_NOTE}`,
        },
      },
    );
}
