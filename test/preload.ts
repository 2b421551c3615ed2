// Runs before the test suite: a fresh clone gets its native libraries and tiny model first.
import { ensureSetup } from "../scripts/ensure-setup.ts";

ensureSetup();
