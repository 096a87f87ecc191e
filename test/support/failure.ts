/** The error (or rejection) of `run`; fails the test if `run` succeeds. */
export async function failureOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, but the operation succeeded');
}
