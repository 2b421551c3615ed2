// The settings registry: precedence (flags > env > file > defaults), validation and --help text.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, settingsHelp } from "../../src/config/config.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("config", () => {
  test("defaults apply when nothing is given", () => {
    const { config, positionals } = loadConfig([], {});
    expect(config.port).toBe(10000);
    expect(config.host).toBe("127.0.0.1");
    expect(config.model).toEqual([]);
    expect(positionals).toEqual([]);
  });

  test("CLI flags beat environment variables, which beat the config file", () => {
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ port: 9001, parallel: 2, "ctx-size": 1024, host: "0.0.0.0" }));
    const env = { COCOON_CONFIG: file, COCOON_PORT: "9002", COCOON_PARALLEL: "3" };
    const { config } = loadConfig(["--port", "9003", "serve"], env);
    expect(config.port).toBe(9003);
    expect(config.parallel).toBe(3);
    expect(config.ctxSize).toBe(1024);
    expect(config.host).toBe("0.0.0.0");
  });

  test("TOML config files work, and repeatable flags collect every value", () => {
    const file = join(dir, "c.toml");
    writeFileSync(file, 'threads = 2\nmodel = ["a.gguf"]\n');
    const { config } = loadConfig(["--config", file, "-m", "b.gguf", "--model=c.gguf"], {});
    expect(config.threads).toBe(2);
    expect(config.model).toEqual(["b.gguf", "c.gguf"]);
  });

  test("list variables separate values with ';' so model options keep their commas", () => {
    const { config } = loadConfig([], { COCOON_MODEL: "a=/m/a.gguf#slots=2,ctx-size=512; /m/b.gguf" });
    expect(config.model).toEqual(["a=/m/a.gguf#slots=2,ctx-size=512", "/m/b.gguf"]);
  });

  test("bad values are rejected with the source named", () => {
    expect(() => loadConfig(["--port", "http"], {})).toThrow(/--port: expected a number/);
    expect(() => loadConfig([], { COCOON_PORT: "70000" })).toThrow(/COCOON_PORT: must be at most 65535/);
    expect(() => loadConfig(["--parallel", "1.5"], {})).toThrow(ConfigError);
    expect(() => loadConfig(["--log-level", "loud"], {})).toThrow(/must be one of/);
    expect(() => loadConfig(["--whatever"], {})).toThrow(/unknown option --whatever/);
    expect(() => loadConfig(["--port"], {})).toThrow(/needs a value/);
    expect(() => loadConfig(["--config", join(dir, "none.json")], {})).toThrow(/not found/);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{ port: ");
    expect(() => loadConfig(["--config", bad], {})).toThrow(/not valid JSON/);
    const unknown = join(dir, "unknown.json");
    writeFileSync(unknown, JSON.stringify({ colour: "blue" }));
    expect(() => loadConfig(["--config", unknown], {})).toThrow(/unknown setting "colour"/);
  });

  test("command flags pass through untouched", () => {
    const { extra, positionals } = loadConfig(["generate", "--prompt", "hi there", "--max-tokens=5"], {}, { prompt: true, "max-tokens": true });
    expect(positionals).toEqual(["generate"]);
    expect(extra).toEqual({ prompt: "hi there", "max-tokens": "5" });
  });

  test("--help lists every setting with its flag, environment variable and default", () => {
    const help = settingsHelp();
    expect(help).toContain("--port <value>");
    expect(help).toContain("COCOON_PORT");
    expect(help).toContain("[default: 10000]");
    expect(help).toContain("COCOON_GPU_LAYERS");
  });
});
