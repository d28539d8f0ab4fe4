/** A bad argument or file given by the user: reported without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
