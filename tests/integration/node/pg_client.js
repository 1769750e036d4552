// Runs node-postgres through pgpilot and prints one JSON object with what it saw; the
// pytest (test_node_pg.py) asserts on it. Connection: PGHOST/PGPORT/PGUSER/PGDATABASE.
'use strict';
const { Client } = require('pg');

async function main() {
  const table = process.argv[2];
  const out = {};
  const client = new Client({ application_name: 'node-pg-test' });
  const notices = [];
  client.on('notice', (n) => notices.push(n.message));
  await client.connect();
  try {
    // simple query protocol (no parameters)
    const simple = await client.query("SELECT 1 AS one, 'two'::text AS two");
    out.simple = { rows: simple.rows, fields: simple.fields.map((f) => f.name) };

    // extended protocol: parameters, unnamed statement
    const param = await client.query(
      'SELECT $1::int + 1 AS n, $2::text AS t, $3::text IS NULL AS isnull', [41, 'héllo', null]);
    out.param = param.rows;

    // named prepared statement, executed repeatedly (Parse once, then Bind/Execute)
    out.prepared = [];
    for (let i = 0; i < 3; i++) {
      const r = await client.query(
        { name: 'square', text: 'SELECT $1::int * $1::int AS sq', values: [i + 2] });
      out.prepared.push(r.rows[0].sq);
    }

    // a transaction: commit one row, roll back another
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['committed']);
    await client.query('COMMIT');
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['rolled back']);
    await client.query('ROLLBACK');

    // an error, then the session goes on
    try {
      await client.query('SELECT $1::int / 0', [1]);
      out.error = null;
    } catch (e) {
      out.error = e.code;
    }
    const after = await client.query('SELECT count(*)::int AS c FROM ' + table);
    out.count_after_error = after.rows[0].c;

    await client.query("DO $$ BEGIN RAISE NOTICE 'node notice'; END $$");
    out.notices = notices;
    out.backend_pid = client.processID;
  } finally {
    await client.end();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`node client failed: ${e.stack || e}\n`);
  process.exit(1);
});
