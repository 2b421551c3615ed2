// Runs before the test suite: a fresh clone gets its native libraries and tiny model first, and
// tests that run the real model get a timeout that suits a 2-core CI machine.
import { setDefaultTimeout } from "bun:test";
import { ensureSetup } from "../scripts/ensure-setup.ts";

ensureSetup();
setDefaultTimeout(60_000);
