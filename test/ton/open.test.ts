// The TON settings from the config: defaults, fractional poll intervals, and clear errors at start-up.
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config/config.ts";
import { openStore } from "../../src/store/db.ts";
import { openTon } from "../../src/ton/open.ts";

const RAW = "0:2fe86ca77d7eabad195b363607a5ae4ccf550313ad6ce553e0f9337cb0115e47";

describe("TON settings", () => {
  test("defaults: deposits off, 5 s polls, toncenter's public API, 0.01 TON minimum, a public price source", () => {
    const { config } = loadConfig([], {});
    expect(config).toMatchObject({ tonWallet: "", tonNetwork: "mainnet", tonApi: "https://toncenter.com/api/v2", tonPollInterval: 5, tonMinDeposit: "0.01" });
    expect(config.tonUsdRateUrl).toStartWith("https://");
    const db = openStore(":memory:");
    const ton = openTon(config, db);
    expect(ton).toMatchObject({ wallet: null, watcher: null, minimum: 10_000_000n });
    expect(ton.rate).not.toBeNull();
    db.close();
  });

  test("a fractional poll interval and the wallet from the environment; the rate source can be turned off", () => {
    const { config } = loadConfig(["--ton-poll-interval", "0.25", "--ton-usd-rate-url", "off"], { COCOON_TON_WALLET: RAW, COCOON_TON_NETWORK: "testnet" });
    expect(config.tonPollInterval).toBe(0.25);
    const db = openStore(":memory:");
    const ton = openTon(config, db);
    expect(ton.wallet).toMatchObject({ raw: RAW, network: "testnet" });
    expect(ton.wallet!.display).toStartWith("0Q");
    expect(ton.watcher).not.toBeNull();
    expect(ton.rate).toBeNull();
    db.close();
  });

  test("bad values are ConfigErrors naming the setting", () => {
    const db = openStore(":memory:");
    const open = (argv: string[]) => () => openTon(loadConfig(argv, {}).config, db);
    expect(open(["--ton-wallet", "nope"])).toThrow(/--ton-wallet/);
    expect(open(["--ton-wallet", "0QAv6GynfX6rrRlbNjYHpa5Mz1UDE61s5VPg-TN8sBFeRzLm"])).toThrow(/testnet address/);
    expect(open(["--ton-min-deposit", "lots"])).toThrow(/--ton-min-deposit/);
    expect(open(["--ton-min-deposit", "-1"])).toThrow(/negative/);
    expect(open(["--ton-usd-rate-url", "ftp://x"])).toThrow(/--ton-usd-rate-url/);
    expect(open(["--ton-wallet", RAW, "--ton-api", "toncenter.com"])).toThrow(/--ton-api/);
    expect(open(["--ton-wallet", RAW])).not.toThrow();
    expect(() => loadConfig(["--ton-network", "devnet"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--ton-poll-interval", "0"], {})).toThrow(ConfigError);
    db.close();
  });
});
