/** Schedules (issue 11): the cadence policy, discovery grouping and retention settings; pure. */
export * from './policy.js';
export * from './discovery.js';
export * from './retention.js';
