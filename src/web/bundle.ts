// Bundles the browser code (src/web/client, TypeScript) into one ES module. Imported as a Bun macro, so
// it runs when index.ts is transpiled: at load time from source (`bun run start`, `bun test`), and at
// build time in `bun run compile`, where the executable gets the bundled text as a string literal.

function bundle(entry: string, what: string): string {
  // A fixed cwd: the bundle names its modules relative to it, and the content hash must not depend on
  // where the server or the compile was started from.
  const r = Bun.spawnSync([process.execPath, "build", entry, "--target=browser", "--format=esm"], { cwd: import.meta.dir, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    const message = `bundling the ${what} (${entry}) failed:\n${r.stderr.toString()}${r.stdout.toString()}`;
    // Bun reports a macro's exception only as "cannot coerce Exception": say what went wrong first.
    console.error(message);
    throw new Error(message);
  }
  return r.stdout.toString();
}

/**
 * The chat UI's script. It runs the `bun build` CLI in a child process because a macro must not call
 * Bun.build (the bundler running the macro would wait on itself); any build error fails the load or
 * the compile, never serves a broken page.
 */
export function bundleClient(): string {
  return bundle(`${import.meta.dir}/client/app.ts`, "chat UI");
}

/** The operator dashboard's script (client/admin), bundled the same way. */
export function bundleAdmin(): string {
  return bundle(`${import.meta.dir}/client/admin/app.ts`, "admin dashboard");
}
