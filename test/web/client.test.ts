// The browser code (src/web/client) is strict TypeScript checked with the DOM's types, and the macro
// bundles it into one self-contained module: CI runs only `bun test`, so the type check lives here too.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";
import { bundleClient } from "../../src/web/bundle.ts";
import { ROOT } from "../support/model.ts";

// tsc on a busy 2-core machine can take longer than bun's 5 s default.
setDefaultTimeout(60_000);

describe("web client", () => {
  test("type-checks under the strict project options with DOM types (src/web/client/tsconfig.json)", () => {
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const r = Bun.spawnSync([process.execPath, tsc, "--noEmit", "-p", join(ROOT, "src", "web", "client")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("bundles into one module that imports nothing and starts the app", () => {
    const js = bundleClient();
    // Matched lines, not the whole bundle, so a failure reads short.
    expect(js.match(/^\s*(?:import|export)\b.*$/gm)).toBeNull();
    expect(js.match(/\bimport\s*\(.*$/gm)).toBeNull();
    // Every module made it in, the entry last.
    const modules = [...js.matchAll(/^\/\/ client\/(\w+)\.ts$/gm)].map((m) => m[1]);
    expect(modules.toSorted()).toEqual(["account", "app", "dom", "highlight", "markdown", "sessions", "state", "stream"]);
    expect(modules.at(-1)).toBe("app");
    expect(js.trimEnd().slice(-20)).toEndWith("start();");
    // It parses as an ES module.
    expect(() => new Bun.Transpiler({ loader: "js" }).scan(js)).not.toThrow();
  });
});
