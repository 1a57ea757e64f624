/** @partita/cli: the `partita` command, also callable in-process (`main(argv, io)`). */
export { main, mainHelp, COMMANDS } from './main.js';
export { EXIT, EXIT_CODES_HELP, exitCodeOf } from './errors.js';
export { processIo, type Io } from './io.js';
export { type JobFilter } from './listing.js';
export { formatLogLine, prettyLogger } from './pretty-log.js';
