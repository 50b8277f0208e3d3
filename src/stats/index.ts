/** The patch curve (issue 9 §4), pure: daily series, time to patch, survival. The store aggregates; this computes. */
export * from './types.js';
export * from './days.js';
export * from './series.js';
export * from './survival.js';
