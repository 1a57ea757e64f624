import { PartitaError } from '@partita/core';

/** No process of that name is stored: a node declares it (processesPlugin({ processes: [defineProcess(...)] })) first. */
export class UnknownProcessError extends PartitaError {
  readonly processName: string;
  constructor(name: string) {
    super(
      'UNKNOWN_PROCESS',
      `no background process "${name}"; a node declares it with processesPlugin({ processes: [defineProcess({ name: "${name}", ... })] }); list them with \`partita processes\``,
    );
    this.processName = name;
  }
}
