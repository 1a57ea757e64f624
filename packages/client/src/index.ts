export { connect, Client, type ConnectOptions, type EnqueueManyItem, type EnqueueManyResult, type ClientHooks } from './client.js';
