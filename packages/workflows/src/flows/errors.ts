import { ValidationError } from '@partita/core';

/** A flow definition that cannot run: names the queue and what to change. */
export class FlowDefinitionError extends ValidationError {
  constructor(flow: string, message: string, path = 'queues') {
    super(`flow ${flow}: ${message}`, path);
    this.name = 'FlowDefinitionError';
  }
}

/** A call that needs the flow connected (a node or a client) came before startAll / useClient. */
export class FlowNotStartedError extends Error {
  constructor(flow: string, call: string) {
    super(
      `flow ${flow}: ${call} needs a connection; call flow.startAll(nodeOptions) or flow.startAll({ node }) first, or flow.useClient(client) in a program that only creates and reads jobs`,
    );
    this.name = 'FlowNotStartedError';
  }
}
