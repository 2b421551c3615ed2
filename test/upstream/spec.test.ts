// --upstream as a flag, an environment variable and a config-file entry (string or object).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/config/config.ts";
import { parseUpstreamSpec, parseUpstreams } from "../../src/upstream/spec.ts";
import { checkWorkerConfig } from "../../src/upstream/worker-role.ts";

describe("--upstream", () => {
  test("NAME=URL with options", () => {
    const u = parseUpstreamSpec("gpu1=http://10.0.0.2:10000/v1/#key=s3cret,models=a|b,weight=3,coefficient=1200,ctx-size=8192,slots=8,type=chat");
    expect(u).toEqual({ name: "gpu1", url: "http://10.0.0.2:10000", key: "s3cret", models: ["a", "b"], weight: 3, coefficient: 1200, ctxSize: 8192, slots: 8, type: "chat" });
  });

  test("defaults, and the key from an environment variable", () => {
    const u = parseUpstreamSpec("v=https://vllm.internal:8000#key-env=VLLM_KEY", { VLLM_KEY: "from-env" });
    expect(u).toEqual({ name: "v", url: "https://vllm.internal:8000", key: "from-env", models: null, weight: 1, coefficient: 1000, ctxSize: null, slots: null, type: null });
  });

  test("bad specs are refused with the reason", () => {
    expect(() => parseUpstreamSpec("http://x:1")).toThrow(ConfigError);
    expect(() => parseUpstreamSpec("a=ftp://x")).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseUpstreamSpec("a=http://x#weight=0")).toThrow(/weight must be an integer >= 1/);
    expect(() => parseUpstreamSpec("a=http://x#colour=red")).toThrow(/unknown option "colour"/);
    expect(() => parseUpstreamSpec("a=http://x#key-env=NOPE", {})).toThrow(/NOPE/);
    expect(() => parseUpstreams(["a=http://x", "a=http://y"])).toThrow(/share the name/);
  });

  test("repeatable on the command line; objects in a TOML config file", () => {
    const dir = mkdtempSync(join(tmpdir(), "cocoon-upstream-"));
    try {
      const file = join(dir, "gateway.toml");
      writeFileSync(file, `upstream = [{ name = "a", url = "http://127.0.0.1:1", weight = 2, models = ["m1"] }, "b=http://127.0.0.1:2#coefficient=1500"]\n`);
      const { config } = loadConfig(["--config", file]);
      const specs = parseUpstreams(config.upstream);
      expect(specs.map((s) => [s.name, s.url, s.weight, s.coefficient, s.models])).toEqual([
        ["a", "http://127.0.0.1:1", 2, 1000, ["m1"]],
        ["b", "http://127.0.0.1:2", 1, 1500, null],
      ]);
      const cli = loadConfig(["--upstream", "a=http://h:1", "--upstream", "b=http://h:2"], {});
      expect(cli.config.upstream).toEqual(["a=http://h:1", "b=http://h:2"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--role worker", () => {
  test("beyond loopback it needs a secret of at least 16 characters", () => {
    expect(() => checkWorkerConfig({ role: "worker", workerSecret: "", host: "0.0.0.0" })).toThrow(/needs --worker-secret/);
    expect(() => checkWorkerConfig({ role: "worker", workerSecret: "short", host: "0.0.0.0" })).toThrow(/at least 16/);
    expect(() => checkWorkerConfig({ role: "worker", workerSecret: "", host: "127.0.0.1" })).not.toThrow();
    expect(() => checkWorkerConfig({ role: "worker", workerSecret: "0123456789abcdef", host: "10.0.0.2" })).not.toThrow();
    expect(() => loadConfig(["--role", "boss"], {})).toThrow(/must be one of server, worker/);
  });
});
