/** A bad argument or file given by the user: reported without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The user stopped a command (Ctrl-C) and it stopped cleanly: exit code 130, like a shell. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}
