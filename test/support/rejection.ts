// What an SDK call rejected with, for tests of error classes: it fails the test when the call resolves.
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the request to fail, but it succeeded");
}
