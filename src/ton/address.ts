// The service wallet's address: parsed from any form an operator pastes (raw `0:<hex>` or
// user-friendly, bounceable or not), kept in raw form, shown to customers in the form wallets expect.
import { Address } from "@ton/core";

export type TonNetwork = "mainnet" | "testnet";

export interface WalletAddress {
  address: Address;
  /** `<workchain>:<64 hex>`: one spelling per address, so it is what we store and compare. */
  raw: string;
  /** What customers see and copy: user-friendly, URL-safe, non-bounceable, test-only on testnet. */
  display: string;
  network: TonNetwork;
}

export class AddressError extends Error {
  override name = "AddressError";
}

/**
 * Customers are shown the non-bounceable form (UQ.../0Q...): that is TON's recommendation for wallet
 * addresses. A bounceable transfer to a wallet that is not deployed yet (a new service wallet before
 * its first outgoing transfer) bounces back to the sender, minus fees, and the deposit never arrives;
 * a non-bounceable one stays on the wallet. Wallet apps also warn when sending to the bounceable form
 * of an undeployed address. The testnet flag makes testnet wallets refuse to send mainnet coins to it.
 */
export function displayAddress(address: Address, network: TonNetwork): string {
  return address.toString({ urlSafe: true, bounceable: false, testOnly: network === "testnet" });
}

/** Parses the configured wallet; throws AddressError with a clear message for anything else. */
export function parseWallet(input: string, network: TonNetwork): WalletAddress {
  const text = input.trim();
  let address: Address;
  try {
    address = Address.parse(text);
  } catch (err) {
    throw new AddressError(`"${input}" is not a TON address (raw 0:<64 hex> or user-friendly EQ.../UQ...): ${(err as Error).message}`);
  }
  // A friendly address carries a test-only flag: one made for testnet must not receive mainnet coins.
  if (Address.isFriendly(text) && Address.parseFriendly(text).isTestOnly && network === "mainnet") {
    throw new AddressError(`"${input}" is a testnet address (test-only flag set) but the network is mainnet; set the network to testnet or use the mainnet form`);
  }
  return { address, raw: address.toRawString(), display: displayAddress(address, network), network };
}

