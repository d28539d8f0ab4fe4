// ESLint (flat config) with typescript-eslint. `npm run lint`; CI runs it (.ci/run).
// What it is for, beyond style: an unawaited promise in a trading path is a silent lost order
// or alert (no-floating-promises, no-misused-promises, type-aware), and workflow code runs in
// Temporal's deterministic sandbox, where a Node built-in or an activity's implementation has
// no business (no-restricted-imports there, as Temporal's own samples configure it).
'use strict';
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

module.exports = tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.data/**', 'models/bootstrap/**', 'test/histories/*.json', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-require-imports': 'error',
      'no-duplicate-imports': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Deterministic workflow code: no Node built-ins, no activity implementations (types only).
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: NODE_BUILTINS.map((name) => ({ name, message: 'workflow code runs in Temporal\'s sandbox: no Node built-ins (do it in an activity)' })),
          patterns: [
            { group: ['**/activities', '**/activities/**'], allowTypeImports: true, message: 'workflows call activities through proxyActivities; import their types only' },
            { group: ['**/infra/**', '**/ledger/**', '**/models/**', '**/control/**', '**/workers/**', '**/client/**', '**/telegram/**', '**/backtester/**'], message: 'workflow code imports lib/ only' },
          ],
        },
      ],
    },
  },
  {
    // Plain JavaScript entry points (bin/, this file): CommonJS with require().
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The HTML report's page script runs in a browser, inlined into the page (a plain script).
    files: ['backtester/report/page.js'],
    languageOptions: { sourceType: 'script', globals: { window: 'readonly', document: 'readonly', console: 'readonly' } },
  },
);
