// Where the database lives: --db, --data-dir, systemd's $STATE_DIRECTORY, an existing ./data (kept,
// with a line saying so), else $XDG_DATA_HOME/cocoon-server: the same file from any directory.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeLocation, storeLocationLines } from "../../src/platform/open.ts";

const dir = mkdtempSync(join(tmpdir(), "cocoon-open-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const none = { dataDir: "", db: "" };

describe("storeLocation", () => {
  test("by default the XDG data directory, whatever the working directory", () => {
    const env = { XDG_DATA_HOME: join(dir, "xdg"), HOME: join(dir, "home") };
    const a = storeLocation(none, env, join(dir, "one"));
    const b = storeLocation(none, env, join(dir, "two"));
    expect(a).toEqual({ dir: join(dir, "xdg", "cocoon-server"), path: join(dir, "xdg", "cocoon-server", "cocoon.sqlite"), source: "$XDG_DATA_HOME" });
    expect(b.path).toBe(a.path);
    expect(storeLocationLines(a)).toEqual([`database ${a.path} (default under $XDG_DATA_HOME)`]);
  });

  test("without XDG_DATA_HOME (or a relative one, which the spec says to ignore): ~/.local/share/cocoon-server", () => {
    for (const env of [{ HOME: join(dir, "home") }, { HOME: join(dir, "home"), XDG_DATA_HOME: "relative/dir" }]) {
      expect(storeLocation(none, env, dir)).toMatchObject({ path: join(dir, "home", ".local", "share", "cocoon-server", "cocoon.sqlite"), source: "~/.local/share" });
    }
  });

  test("under systemd: $STATE_DIRECTORY (the first when it lists several)", () => {
    const env = { STATE_DIRECTORY: "/var/lib/cocoon-server:/var/lib/other", XDG_DATA_HOME: join(dir, "xdg") };
    expect(storeLocation(none, env, dir)).toMatchObject({ path: "/var/lib/cocoon-server/cocoon.sqlite", source: "$STATE_DIRECTORY" });
  });

  test("an existing ./data/cocoon.sqlite keeps being used, with a line saying so; an empty ./data is not", () => {
    const cwd = join(dir, "legacy");
    mkdirSync(join(cwd, "data"), { recursive: true });
    const env = { XDG_DATA_HOME: join(dir, "xdg") };
    expect(storeLocation(none, env, cwd).source).toBe("$XDG_DATA_HOME");
    writeFileSync(join(cwd, "data", "cocoon.sqlite"), "");
    const loc = storeLocation(none, env, cwd);
    expect(loc).toMatchObject({ path: join(cwd, "data", "cocoon.sqlite"), source: "./data" });
    const lines = storeLocationLines(loc);
    expect(lines.length).toBe(2);
    expect(lines[1]).toContain("using the existing database");
    expect(lines[1]).toContain("--data-dir");
    // systemd's directory and the flags still come first.
    expect(storeLocation(none, { ...env, STATE_DIRECTORY: "/srv/state" }, cwd).source).toBe("$STATE_DIRECTORY");
  });

  test("--data-dir and --db override everything, relative to the working directory", () => {
    const env = { STATE_DIRECTORY: "/srv/state", XDG_DATA_HOME: join(dir, "xdg") };
    expect(storeLocation({ dataDir: "state", db: "" }, env, dir)).toMatchObject({ path: join(dir, "state", "cocoon.sqlite"), source: "--data-dir" });
    expect(storeLocation({ dataDir: "state", db: "x/my.db" }, env, dir)).toEqual({ dir: join(dir, "x"), path: join(dir, "x", "my.db"), source: "--db" });
  });
});
