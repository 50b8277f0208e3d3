/**
 * The package version, written once. Not read from package.json at run time: the forensics bundle is one
 * file without it. src/core/version.test.ts keeps it equal to package.json's.
 */
export const VERSION = '0.1.0';
