// Rewrites the error-code table of docs/CONTROL-PROTOCOL.md from the registry
// (src/protocol/error-codes.ts): node dist/test/helpers/write-error-table.js
import { readFileSync, writeFileSync } from 'node:fs';
import { errorCodeTable } from '../../src/protocol/error-codes.js';
import { ROOT } from './topology.js';

const START = '<!-- error codes: made from src/protocol/error-codes.ts -->';
const END = '<!-- end of error codes -->';
const file = `${ROOT}docs/CONTROL-PROTOCOL.md`;
const doc = readFileSync(file, 'utf8');
const start = doc.indexOf(START);
const end = doc.indexOf(END);
if (start < 0 || end < start) throw new Error(`${file} has no ${START} … ${END} section`);
writeFileSync(file, `${doc.slice(0, start)}${START}\n\n${errorCodeTable()}\n\n${doc.slice(end)}`);
process.stdout.write(`${file}: error code table written\n`);
