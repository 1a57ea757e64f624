export {
  dashboard,
  createDashboard,
  type DashboardOptions,
  type DashboardHandler,
  type DashboardAction,
  type ActionRecord,
  type BulkOp,
  ACTION_EVENT_KIND,
} from './dashboard.js';
export { dashboardPlugin, type DashboardPluginOptions } from './plugin.js';
export { parseFilter, formatFilter, type JobFilter } from './filter.js';
