// Seed 001's account routes: self-service sign-up (/api/register), key check with account info
// (/api/login) and account creation by the operator (POST /v1/keys).
import { depositCodeOf } from "../accounts.ts";
import { ApiKeyResponse, CreateAccountRequest, LoginRequest, LoginResponse, RegisterResponse } from "../model.ts";
import { openAccount } from "../operations.ts";
import { apiKeyResponse, depositFields, tonNumber } from "../wire.ts";
import { accountOf, adminErrors, AUTH_NOTE, keyErrors, minimumOf, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

export function accountRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const { platform } = deps;
  const db = platform.store;
  const open = async (name: string | undefined) => await openAccount(db, { label: name ?? null, signupCredit: platform.opts.signupCredit });
  return routeFile("platform-accounts", auth)
    .model({ ApiKeyResponse, RegisterResponse, LoginResponse })
    .post(
      "/api/register",
      async ({ body, request, server }) => {
        // The peer's address (a proxy in front: its address, so all its clients share the limit).
        platform.admitSignup(request, server?.requestIP(request)?.address ?? "unknown");
        const opened = await open(body?.name);
        return { ...apiKeyResponse(opened), ...depositFields(deps.depositWallet(), opened.depositCode, minimumOf(deps)) };
      },
      {
        auth: "public",
        body: CreateAccountRequest,
        parse: "json",
        response: { 200: "RegisterResponse", 400: "ErrorResponse", 403: "ErrorResponse", 429: "ErrorResponse" },
        detail: {
          tags: ["Authentication"],
          summary: "Register a new user",
          description:
            "Self-service sign-up, no authentication: creates an account and returns its API key (shown only once: it is stored hashed), deposit code and deposit wallet. " +
            "`deposit_wallet` is null when this server accepts no deposits (`deposit_instructions` says so). The balance includes the sign-up credit when the server grants one. " +
            "Limited per client address per day (`--register-limit`; 429 signup_limit_exceeded past it); `--register admin` requires the admin token, `--register off` closes it (403).",
        },
      },
    )
    .post(
      "/api/login",
      async ({ body, request, set }) => {
        // The key may come in the body, so this route admits its caller itself, after validation.
        const principal = body?.api_key !== undefined ? await platform.principalOf(body.api_key) : await platform.authenticate(request);
        Object.assign(set.headers, await platform.admit(principal, "account"));
        const b = await accountOf(platform, principal);
        const code = await depositCodeOf(db, principal.accountId);
        return { balance_ton: tonNumber(b.balance), balance_nanoton: Number(b.balance), deposit_code: code, ...depositFields(deps.depositWallet(), code, minimumOf(deps)) };
      },
      {
        auth: "public",
        body: LoginRequest,
        parse: "json",
        response: { 200: "LoginResponse", 400: "ErrorResponse", ...keyErrors },
        detail: {
          tags: ["Authentication"],
          summary: "Verify an API key and get account info",
          description: `Verifies \`api_key\` from the body, or the \`Authorization: Bearer\` key when the body has none; 401 when it is not a valid key. ${AUTH_NOTE}`,
        },
      },
    )
    .post(
      "/v1/keys",
      async ({ body, set }) => {
        const opened = await open(body?.name);
        set.status = 201;
        return apiKeyResponse(opened);
      },
      {
        auth: "admin-if-configured",
        body: CreateAccountRequest,
        parse: "json",
        response: { 201: "ApiKeyResponse", 400: "ErrorResponse", ...adminErrors },
        detail: {
          tags: ["Authentication"],
          summary: "Create a new account and API key",
          description:
            "Creates a new account with an API key and deposit code; the key is shown only once. Requires the admin token as `Authorization: Bearer <token>` " +
            "when one is configured (403 otherwise); without one, anyone may call it, like /api/register. To add a key to your own account use POST /v1/account/keys.",
        },
      },
    );
}
