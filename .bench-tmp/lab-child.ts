import { startLab } from '../lab/server.js';
const lab = await startLab({ hosts: 1024, base: '127.72.0.0', seed: 5 });
process.stdout.write(JSON.stringify({ httpsPort: lab.httpsPort }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => void lab.close().then(() => process.exit(0)));
