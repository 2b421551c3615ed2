// Runs before the test suite: a fresh clone gets its native libraries and tiny model first, and the
// default data location (XDG_DATA_HOME) points into a temporary directory, so no test, nor any
// server or command it starts without --data-dir, can touch a real database in ~/.local/share.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureSetup } from "../scripts/ensure-setup.ts";

ensureSetup();

const xdg = mkdtempSync(join(tmpdir(), "cocoon-test-xdg-data-"));
process.env.XDG_DATA_HOME = xdg;
delete process.env.STATE_DIRECTORY;
process.on("exit", () => rmSync(xdg, { recursive: true, force: true }));
