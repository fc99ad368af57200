// Starts unleash-server for tests/unleash.rs on 127.0.0.1, against the throwaway PostgreSQL
// cluster the test started. Everything comes from the environment the test sets:
//   UNLEASH_MODULE  path of node_modules/unleash-server
//   UNLEASH_PORT, DATABASE_PORT, DATABASE_USERNAME, DATABASE_NAME
//   KS_ADMIN_TOKEN, KS_BACKEND_TOKEN  tokens created on the empty database
// SEND_TELEMETRY=false and CHECK_VERSION=false must be set in the environment too (the
// telemetry option alone is ignored). Exits when its stdin closes (the test process is gone).
'use strict';
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// unleash-server 8 is an ES module: load it by file URL.
const entry = pathToFileURL(path.join(process.env.UNLEASH_MODULE, 'dist/lib/server-impl.js'));

const tokens = [
  { environment: '*', project: '*', secret: process.env.KS_ADMIN_TOKEN, type: 'admin', tokenName: 'killswitch-admin' },
  { environment: 'production', project: '*', secret: process.env.KS_BACKEND_TOKEN, type: 'client', tokenName: 'killswitch-backend' },
];
if (process.env.KS_DEV_BACKEND_TOKEN) {
  tokens.push({ environment: 'development', project: '*', secret: process.env.KS_DEV_BACKEND_TOKEN, type: 'client', tokenName: 'killswitch-backend-dev' });
}
if (process.env.KS_FRONTEND_TOKEN) {
  tokens.push({ environment: 'production', project: '*', secret: process.env.KS_FRONTEND_TOKEN, type: 'frontend', tokenName: 'killswitch-frontend' });
}

import(entry.href)
  .then((unleash) => unleash.start({
    db: {
      host: '127.0.0.1',
      port: Number(process.env.DATABASE_PORT),
      user: process.env.DATABASE_USERNAME,
      password: '',
      database: process.env.DATABASE_NAME,
      ssl: false,
    },
    server: { host: '127.0.0.1', port: Number(process.env.UNLEASH_PORT), gracefulShutdownEnable: false },
    authentication: { initApiTokens: tokens },
    versionCheck: { enable: false },
    logLevel: 'warn',
  }))
  .then(() => console.log('unleash started'))
  .catch((err) => {
    console.error('unleash failed to start:', err);
    process.exit(1);
  });

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
