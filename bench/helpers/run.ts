/**
 * Runs a benchmark's main: exit 0 when it is done (a bench leaves servers' handles and timers
 * behind that would keep the process alive), or its error's stack and exit 1.
 */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
