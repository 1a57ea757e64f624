export { postgresUrl, natsUrl, freshSchema, type TestSchema } from './services.js';
