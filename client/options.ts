import { z } from 'zod';

const INT = /^\d+$/;

/**
 * An integer flag of a `trader` command, from commander's string (or a number given in code):
 * undefined when absent, otherwise an integer in [min, max] or a usage error naming the flag,
 * the value and, when given, what the number is.
 */
export const intOption = (flag: string, min: number, max: number, what?: string) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const n = typeof v === 'number' ? v : INT.test(v.trim()) ? Number(v.trim()) : NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${flag} '${v}': expected ${what ? `${what}, ` : ''}an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal flag: undefined when absent, otherwise a finite number that passes `check`, or a usage error saying what was expected. */
export const numberOption = (flag: string, check: (n: number) => boolean, expected: string) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const n = typeof v === 'number' ? v : NUMBER.test(v.trim()) ? Number(v.trim()) : NaN;
      if (!Number.isFinite(n) || !check(n)) {
        ctx.addIssue({ code: 'custom', message: `${flag} '${v}': expected ${expected}` });
        return z.NEVER;
      }
      return n;
    });

/** The account's starting capital in quote currency (backtest, report). */
export const initialCapitalOption = () => numberOption('--initial-capital', (n) => n > 0 && n <= 1e12, 'a positive amount of quote currency, e.g. 10000');
