/**
 * Exit codes of the migration commands: 0 done; 1 values failed (or verify found problems), or
 * an error; 3 stopped before the work was done (`--max-batches`, rows left after concurrent
 * changes): rerun to continue; 130 interrupted by Ctrl-C / SIGTERM.
 */
export const EXIT_FAILED = 1;
export const EXIT_INCOMPLETE = 3;
export const EXIT_INTERRUPTED = 130;
