/** Exports (issue 10 §6): MISP events, STIX 2.1 bundles and CSV/JSONL lines, built from plain inputs. Pure. */
export { exportSource, splitPath, TLP_LEVELS, DEFAULT_PRODUCER, type ExportInput, type ExportSource, type FileIndicator, type IpIndicator, type Tlp } from './types.js';
export { buildMispEvent, sourceScope, type MispAttribute, type MispDocument, type MispEvent } from './misp.js';
export { buildStixBundle, filePattern, ipPattern, stixString, TLP2_EXTENSION, TLP2_MARKINGS, type StixBundle, type StixObject } from './stix.js';
export { cellOf, csvLine, recordCells, safeCell, stripHostile, type CsvValue } from './csv.js';
export { jsonlLine } from './jsonl.js';
export { isUuid, uuidv5, TOCSIN_NAMESPACE } from './uuid.js';
export { webShellPathOf, webShellsFromForensics } from './web-shells.js';
