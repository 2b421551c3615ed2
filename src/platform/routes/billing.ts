// Seed 001's billing routes: the caller's balance (with USD at the current TON rate), how to deposit,
// and the price list, exactly the integers billing charges.
import { depositCodeOf } from "../accounts.ts";
import { BalanceResponse, DepositResponse, PricingResponse } from "../model.ts";
import { formatTon, pricingDocument } from "../pricing.ts";
import { depositInstructions, tonNumber, transferLink, usdOf } from "../wire.ts";
import { accountOf, AUTH_NOTE, callerOf, keyErrors, minimumOf, routeFile, type PlatformAuth, type PlatformRouteDeps } from "./common.ts";

export function billingRoutes(deps: PlatformRouteDeps, auth: PlatformAuth) {
  const { platform } = deps;
  return routeFile("platform-billing", auth)
    .model({ BalanceResponse, DepositResponse, PricingResponse })
    .get(
      "/v1/balance",
      async ({ principal }) => {
        const caller = callerOf(principal);
        let rate: number | null = null;
        try {
          rate = await deps.tonUsdRate();
        } catch {
          rate = null; // an unknown rate is null, never an error for the balance
        }
        // Read after the (possibly awaited) rate, so the balance is the newest one.
        const b = await accountOf(platform, caller);
        const usd = usdOf(b.balance, rate);
        return { balance_ton: tonNumber(b.balance), balance_nanoton: Number(b.balance), balance_usd: usd, ton_usd_rate: usd === null ? null : rate, reserved_nanoton: Number(b.reserved) };
      },
      {
        auth: "account",
        response: { 200: "BalanceResponse", ...keyErrors },
        detail: { tags: ["Billing"], summary: "Check account balance", description: `The caller's balance; USD fields are null while no TON/USD rate is known. ${AUTH_NOTE}` },
      },
    )
    .get(
      "/v1/deposit",
      async ({ principal }) => {
        const code = await depositCodeOf(platform.store, callerOf(principal).accountId);
        const wallet = deps.depositWallet();
        const min = minimumOf(deps);
        return {
          wallet,
          memo: code,
          instructions: depositInstructions(wallet, code, min),
          link: wallet === null ? null : transferLink(wallet, code),
          deposits_enabled: wallet !== null,
          minimum_deposit_ton: wallet === null ? null : formatTon(min),
          minimum_deposit_nanoton: wallet === null ? null : Number(min),
        };
      },
      {
        auth: "account",
        response: { 200: "DepositResponse", ...keyErrors },
        detail: {
          tags: ["Billing"],
          summary: "Get deposit instructions",
          description:
            "The TON wallet and the memo (your deposit code) to put on a transfer, and a `ton://transfer` link with the memo filled in. " +
            `Always 200 for a valid key: when this server has no deposit wallet, \`deposits_enabled\` is false, \`wallet\` and \`link\` are null and \`instructions\` says so. ${AUTH_NOTE}`,
        },
      },
    )
    .get("/v1/pricing", () => pricingDocument(platform.opts.pricing, deps.modelIds()), {
      auth: "public",
      response: { 200: "PricingResponse" },
      detail: {
        tags: ["Billing"],
        summary: "Get pricing information",
        description:
          "No authentication. Per-token rates by token type, exactly the integers billing uses: effective_nanoton = ceil(base × multiplier × markup); a request costs Σ tokens × effective rate. `models` lists per-model rates.",
      },
    });
}
