/** The findings lifecycle (pure): vocabulary and rules. The fold that applies them lives in platform/db/finding-store.ts. */
export * from './types.js';
export * from './lifecycle.js';
