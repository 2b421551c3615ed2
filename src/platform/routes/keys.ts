// The keys of the caller's own account: list them, add one (same balance), revoke one.
import { ApiError } from "../../http/errors.ts";
import { createKey, listKeys } from "../keys.ts";
import { ApiKeyList, CreatedKey, CreateKeyRequest, RevokedKey } from "../model.ts";
import { keyById, revokeAndRead } from "../operations.ts";
import { iso, keyInfo, parseId, revokedKey } from "../wire.ts";
import { AUTH_NOTE, callerOf, keyErrors, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

export function keyRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const db = deps.platform.db;
  return routeFile("platform-keys", auth)
    .model({ ApiKeyList, CreatedKey, RevokedKey })
    .get(
      "/v1/keys",
      ({ principal }) => {
        const caller = callerOf(principal);
        return { object: "list" as const, data: listKeys(db, caller.accountId).map((k) => keyInfo(k, caller.keyId)) };
      },
      {
        auth: "account",
        response: { 200: "ApiKeyList", ...keyErrors },
        detail: { tags: ["Authentication"], summary: "List your account's keys", description: `Every key of the caller's account, revoked ones included; never the key itself. ${AUTH_NOTE}` },
      },
    )
    .post(
      "/v1/account/keys",
      ({ principal, body, set }) => {
        const now = Date.now();
        const k = createKey(db, callerOf(principal).accountId, body?.name ?? null, now);
        set.status = 201;
        return { id: k.id, api_key: k.key, prefix: k.prefix, name: body?.name ?? null, created_at: iso(now) };
      },
      {
        auth: "account",
        body: CreateKeyRequest,
        parse: "json",
        response: { 201: "CreatedKey", 400: "ErrorResponse", ...keyErrors },
        detail: { tags: ["Authentication"], summary: "Create a key for your account", description: `Another key for the caller's account (same balance); shown only once. ${AUTH_NOTE}` },
      },
    )
    .delete(
      "/v1/account/keys/:id",
      ({ principal, params }) => {
        const caller = callerOf(principal);
        const id = parseId(params.id);
        const k = id === null ? null : keyById(db, id);
        if (!k || k.accountId !== caller.accountId) throw new ApiError("not_found", `No key ${params.id} in this account.`, "id");
        return revokedKey(revokeAndRead(db, caller.accountId, k.id));
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
