// Entry point: parse the one config, then run the requested command: serve (the HTTP server, the
// default), generate (stream a completion to stdout), create-key, backup, version, help.
import pkg from "../package.json" with { type: "json" };
import { ConfigError, loadConfig, settingsHelp } from "./config/config.ts";
import { GENERATE_FLAGS, GENERATE_HELP, generateCommand } from "./cli/generate.ts";
import { CREATE_KEY_FLAGS, CREATE_KEY_HELP, createKeyCommand } from "./cli/create-key.ts";
import { BACKUP_FLAGS, BACKUP_HELP, backupCommand } from "./cli/backup.ts";
import { LLAMA_CPP_RELEASE } from "./native/release.ts";
import { LlamaError } from "./native/llama.ts";
import { EngineError } from "./inference/types.ts";
import { SUPPORTED_FAMILIES } from "./inference/chat-template.ts";
import { StoreOpenError, StoreVersionError } from "./store/db.ts";
import { PgError } from "./store/pg.ts";

const USAGE = `cocoon-server ${pkg.version}: a paid, OpenAI-compatible LLM API on llama.cpp

usage: cocoon-server <command> [options]

commands:
  serve        run the HTTP server (the default)
  generate     load a model and stream a completion of --prompt to stdout
  create-key   create an account with an API key (optionally credited) in the database
  backup       copy the database consistently (--to FILE), also while the server runs
  version      print version, llama.cpp release and backend
  help         this text

settings (flag, or COCOON_* environment variable, or a key in --config):
${settingsHelp()}

chat formats: the model's own template and llama.cpp's tool-call and reasoning parsers (its common chat
library, release ${LLAMA_CPP_RELEASE}); families recognised: ${SUPPORTED_FAMILIES.join(", ")}

${GENERATE_HELP}

${CREATE_KEY_HELP}

${BACKUP_HELP}`;

async function versionText(libDir: string): Promise<string> {
  let backend = "not set up";
  try {
    const { locateNative } = await import("./native/paths.ts");
    const { manifest } = locateNative({ libDir: libDir || undefined });
    backend = `${manifest.backend} (${manifest.origin})`;
  } catch (err) {
    backend = (err as Error).message;
  }
  return `cocoon-server ${pkg.version}\nllama.cpp ${LLAMA_CPP_RELEASE}\nbackend ${backend}`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const { config, positionals, extra } = loadConfig(argv, process.env, { ...GENERATE_FLAGS, ...CREATE_KEY_FLAGS, ...BACKUP_FLAGS, version: false });
  const command = extra.version ? "version" : (positionals[0] ?? "serve");
  switch (command) {
    case "serve": {
      const { startServer } = await import("./server.ts");
      const server = await startServer(config);
      const stop = (signal: string) => void server.stop(signal).then(() => process.exit(0));
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
      try {
        await server.engine;
      } catch (err) {
        await server.stop("model load failed");
        throw err;
      }
      // Keeps running until a signal arrives.
      await new Promise(() => {});
      return 0;
    }
    case "generate":
      await generateCommand(config, extra);
      return 0;
    case "create-key":
      await createKeyCommand(config, extra);
      return 0;
    case "backup":
      backupCommand(config, extra);
      return 0;
    case "version":
      console.log(await versionText(config.libDir));
      return 0;
    case "help":
      console.log(USAGE);
      return 0;
    default:
      throw new ConfigError(`unknown command "${command}" (see --help)`);
  }
}

/** Runs main and turns expected failures into one line: exit code 2 for bad config or model, 1 for the database. */
export async function run(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof LlamaError || err instanceof EngineError) {
      console.error(`cocoon-server: ${err.message}`);
      process.exitCode = 2;
    } else if (err instanceof StoreOpenError || err instanceof StoreVersionError || (err instanceof PgError && err.code === "STORE_UNAVAILABLE")) {
      // The database as found (read-only, newer, not a database): the operator's to fix, in one line.
      console.error(`cocoon-server: ${err.message}`);
      process.exitCode = 1;
    } else {
      throw err;
    }
  }
}

// A compiled executable's entry module calls run() itself (see scripts/compile.ts).
if (import.meta.main) await run(process.argv.slice(2));
