#!/usr/bin/python3
"""converge.py -- the randomized convergence checker (docs/replication.md).

A hub and three SQLite clients hold machines (uuid key, numeric(12,4),
jsonb, an updated_at a hub trigger writes) and their parts (foreign keys to
machines with ON DELETE CASCADE and ON DELETE SET NULL).  Round after round,
random nodes make random inserts, updates, deletes and key changes (each
client's under a random clock offset through libfaketime: +-1 s, +-1 h,
+1 year), and random clients sync in random order, syncqd killed with
SIGKILL at random moments now and then.  After quiescence:

  * every client holds the same rows as every other, byte for byte, and the
    rows the hub holds, value for value;
  * every change a client made is in the final state, or the hub applied it
    (it is in the hub's queue with its version, or re-stamped), or it is
    accounted for in sync_conflicts or sync_errors;
  * on the hub, the last write of every row has that row's greatest version
    (the order of the writes is the order of the versions).

  * last writer wins, directly: every row the hub holds (or does not hold)
    is the row of the change with the greatest version (changed_at,
    origin) among every change of that row the hub knows of (its queue, the
    hub's own changes included, and the losers in sync_conflicts); no
    overruled change is newer than the row's final version.

It prints its seed; the same seed makes the same operations, clock offsets,
sync orders and kill delays (where a kill lands depends on timing).

With --concurrent (issue 15: uploads applied side by side on the hub), each
round every client makes a few transactions of random changes on a small
shared set of keys (so the same rows are updated, deleted and made again by
several clients in the same round), then every client's syncqd --once runs
at the same time, while a hub-app thread keeps writing the same rows in
short transactions and a monitor samples pg_stat_activity to count how
often two or more syncqd transactions were in flight on the hub together
(printed at the end). No SIGKILL in this mode; the clock offsets stay. An
upload that fails for a transient reason (overtaken too often, a deadlock,
a serialization failure) is counted, not a failure: the next round or the
quiescence sends it again. The seed fixes the operations as far as they do
not depend on what the parallel syncs delivered. Records are made under a
small fixed set of keys by any node and parts refer to machines, so that
changes are set aside (an insert that meets another node's record, a part
whose machine is gone) and later go through on a retry;
--no-set-asides makes every record under a key new to every node and parts
refer to no machine (last writer wins alone).

  converge.py --hub CONNINFO --online URL --syncqd PATH --ext SYNCQ_SO
              --dir DIR [--seconds 60] [--seed N] [--clients 3] [--concurrent]
              [--no-set-asides]
"""
import argparse
import collections
import datetime
import decimal
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import psycopg2

FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
OFFSETS = ['+0', '+1', '-1', '+1h', '-1h', '+365d']

HUB_DDL = """
CREATE TABLE machine (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    price numeric(12,4),
    spec jsonb,
    updated_at timestamptz
);
CREATE TABLE part (
    id bigint PRIMARY KEY,
    machine_id uuid REFERENCES machine ON DELETE CASCADE,
    backup_id uuid REFERENCES machine ON DELETE SET NULL,
    qty integer,
    note text
);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON machine
    FOR EACH ROW EXECUTE FUNCTION touch();
SELECT sync_track('machine'), sync_track('part');
"""

CLIENT_DDL = """
PRAGMA foreign_keys = ON;
CREATE TABLE machine (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price NUMERIC,
    spec TEXT,
    updated_at TEXT
);
CREATE TABLE part (
    id BIGINT PRIMARY KEY,
    machine_id TEXT REFERENCES machine ON DELETE CASCADE,
    backup_id TEXT REFERENCES machine ON DELETE SET NULL,
    qty INTEGER,
    note TEXT
);
SELECT sync_track('machine'), sync_track('part');
"""

WORDS = ['lathe', 'press', 'pump', 'valve', 'gate', 'belt', 'drill', 'fan']


def log(msg):
    print('# ' + msg, flush=True)


class Failure(Exception):
    pass


def q(s):
    """An SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


class World:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.hub = psycopg2.connect(args.hub)
        self.hub.autocommit = True
        self.clients = []
        self.offset = {}
        self.changes = {}          # (client, seq) -> queue row
        self.stats = {'ops': 0, 'failed_ops': 0, 'syncs': 0, 'kills': 0, 'hub_ops': 0}
        # --concurrent: the shared keys, and what the parallel syncs did
        prng = random.Random(args.seed ^ 0x5eed)
        self.pool_m = [str(uuid.UUID(int=prng.getrandbits(128), version=4)) for _ in range(10)]
        self.pool_p = list(range(1, 17))
        self.conc = collections.Counter()
        self.waits = collections.Counter()
        self.transient = collections.Counter()
        self.next_part = {}        # node -> the last part id it made (--concurrent)

    # ---- running things ----------------------------------------------------

    def env(self, client):
        env = dict(os.environ)
        off = self.offset.get(client, '+0')
        if off != '+0':
            env['LD_PRELOAD'] = FAKETIME
            env['FAKETIME'] = off
            env['FAKETIME_DONT_FAKE_MONOTONIC'] = '1'
            env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':verify_asan_link_order=0'
        return env

    def sqlite(self, client, sql, load=False, check=True):
        cmds = []
        if load:
            cmds.append('.load ' + self.args.ext)
        cmds.append('.timeout 5000')
        cmds.append('PRAGMA foreign_keys = ON;')
        p = subprocess.run(['sqlite3', client], input='\n'.join(cmds) + '\n' + sql,
                           capture_output=True, text=True, env=self.env(client))
        if check and (p.returncode != 0 or p.stderr.strip()):
            raise Failure('sqlite3 on %s failed: %s' % (client, p.stderr.strip()))
        return p

    def read(self, client, sql, args=()):
        con = sqlite3.connect(client, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def hubq(self, sql, args=None):
        with self.hub.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None

    def sync(self, client, kill_after=None):
        """One syncqd --once on client; SIGKILL after kill_after seconds."""
        self.snapshot(client)
        cmd = [self.args.syncqd, '--sqlite', client, '--online', self.args.online, '--once']
        with open(os.path.join(self.args.dir, 'syncqd.log'), 'a') as logf:
            logf.write('==== syncqd --once on %s\n' % os.path.basename(client))
            logf.flush()
            p = subprocess.Popen(cmd, stdout=logf, stderr=logf, env=self.env(client))
            try:
                rc = p.wait(timeout=kill_after if kill_after is not None else 120)
            except subprocess.TimeoutExpired:
                if kill_after is None:
                    p.kill()
                    raise Failure('syncqd --once on %s did not finish in 120 s' % client)
                p.send_signal(signal.SIGKILL)
                p.wait()
                self.stats['kills'] += 1
                return False
        self.stats['syncs'] += 1
        if rc != 0:
            raise Failure('syncqd --once on %s exited %d (see syncqd.log)' % (client, rc))
        return True

    def up_seq(self, client):
        """The client's acknowledged position (0 before its first sync)."""
        try:
            r = self.read(client, "SELECT CAST(value AS INTEGER) FROM syncqd_state WHERE key = 'up_seq'")
        except sqlite3.OperationalError:
            return 0
        return r[0][0] if r else 0

    def snapshot(self, client):
        """Remember the client's pending changes before they leave."""
        node = self.node_id(client)
        rows = self.read(client,
                         "SELECT seq, table_name, op, pk, row_data, changed_at FROM sync_queue"
                         " WHERE origin = ? AND seq > ?", (node, self.up_seq(client)))
        for r in rows:
            self.changes.setdefault((client, r[0]), r[1:])

    def node_id(self, client):
        return self.read(client, 'SELECT node_id FROM syncq_state')[0][0]

    def pending(self, client):
        node = self.node_id(client)
        return self.read(client, "SELECT count(*) FROM sync_queue WHERE origin = ? AND seq > ?",
                         (node, self.up_seq(client)))[0][0]

    # ---- random operations -------------------------------------------------

    def rand_price(self):
        digits = self.rng.randint(0, 6)
        v = decimal.Decimal(self.rng.randint(0, 10 ** 7)) / (10 ** digits)
        return str(v)

    def rand_spec(self):
        d = {}
        for k in self.rng.sample(['size', 'colour', 'tags', 'rpm', 'ok'], self.rng.randint(0, 3)):
            d[k] = self.rng.choice([1, 2.5, 'red', [1, 2], {'x': 1}, True, None])
        sep = self.rng.choice([(',', ':'), (', ', ': ')])
        return json.dumps(d, separators=sep)

    def ops_sql(self, machines, parts, on_hub):
        """A few random statements, given the ids the node sees now."""
        out = []
        for _ in range(self.rng.randint(1, 5)):
            kind = self.rng.choice(['m_ins', 'm_ins', 'm_upd', 'm_upd', 'm_del', 'm_key',
                                    'p_ins', 'p_ins', 'p_ins', 'p_upd', 'p_upd', 'p_del', 'p_key'])
            name = q(self.rng.choice(WORDS) + str(self.rng.randint(1, 99)))
            if kind == 'm_ins' or (not machines and kind.startswith('m_')):
                mid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                if not on_hub and self.rng.random() < 0.2:
                    mid = mid.upper()
                machines.append(mid)
                at = 'now()' if on_hub else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
                out.append('INSERT INTO machine (id, name, price, spec, updated_at) VALUES (%s, %s, %s, %s, %s)'
                           % (q(mid), name, self.rand_price(), q(self.rand_spec()), at))
            elif kind == 'm_upd':
                out.append('UPDATE machine SET name = %s, price = %s, spec = %s WHERE id = %s'
                           % (name, self.rand_price(), q(self.rand_spec()), q(self.rng.choice(machines))))
            elif kind == 'm_del':
                out.append('DELETE FROM machine WHERE id = %s' % q(self.rng.choice(machines)))
            elif kind == 'm_key':
                new = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                out.append('UPDATE machine SET id = %s WHERE id = %s' % (q(new), q(self.rng.choice(machines))))
            elif kind == 'p_ins' or not parts:
                pid = self.rng.randint(1, 150)
                m = q(self.rng.choice(machines)) if machines else 'NULL'
                b = q(self.rng.choice(machines)) if machines and self.rng.random() < 0.5 else 'NULL'
                out.append('INSERT INTO part (id, machine_id, backup_id, qty, note) VALUES (%d, %s, %s, %d, %s)'
                           % (pid, m, b, self.rng.randint(0, 50), name))
            elif kind == 'p_upd':
                sets = ['qty = %d' % self.rng.randint(0, 50)]
                if machines and self.rng.random() < 0.3:
                    sets.append('machine_id = %s' % q(self.rng.choice(machines)))
                if self.rng.random() < 0.3:
                    sets.append('note = %s' % name)
                out.append('UPDATE part SET %s WHERE id = %d' % (', '.join(sets), self.rng.choice(parts)))
            elif kind == 'p_del':
                out.append('DELETE FROM part WHERE id = %d' % self.rng.choice(parts))
            else:
                out.append('UPDATE part SET id = %d WHERE id = %d'
                           % (self.rng.randint(1, 150), self.rng.choice(parts)))
        return out

    def client_ops(self, client):
        machines = [r[0] for r in self.read(client, 'SELECT id FROM machine ORDER BY id')]
        parts = [r[0] for r in self.read(client, 'SELECT id FROM part ORDER BY id')]
        stmts = self.ops_sql(machines, parts, False)
        if self.rng.random() < 0.5:
            sql = 'BEGIN;\n' + ';\n'.join(stmts) + ';\nCOMMIT;\n'
        else:
            sql = ';\n'.join(stmts) + ';\n'
        p = self.sqlite(client, sql, check=False)
        self.stats['ops'] += len(stmts)
        self.stats['failed_ops'] += p.stderr.count('Error') + p.stderr.count('error')

    def hub_ops(self):
        machines = [str(r[0]) for r in self.hubq('SELECT id FROM machine ORDER BY id')]
        parts = [r[0] for r in self.hubq('SELECT id FROM part ORDER BY id')]
        for stmt in self.ops_sql(machines, parts, True):
            try:
                self.hubq(stmt)
            except psycopg2.Error:
                self.stats['failed_ops'] += 1
            self.stats['hub_ops'] += 1

    # ---- --concurrent ------------------------------------------------------

    def conc_sql(self, rng, machines, parts, n, owner):
        """n random statements on the shared rows: each node updates and
        deletes the machines and parts every node holds (machines, parts:
        the ids this node holds, sets kept up to date as the statements are
        made), so that several nodes change the same rows in a round. A
        record is made (inserted, or a key changed to it) while the shared
        set is smaller than its target: with --set-asides (the default)
        under a small fixed set of keys by any node, parts referring to
        machines, so that changes are set aside for meeting another node's
        record or for a missing parent, and go through on a later retry;
        with --no-set-asides under a key new to every node (owner: this
        node's number, None for the hub, numbers its parts), parts
        referring to no machine: two nodes never make the same record, and
        the uploads compete by last writer wins alone."""
        out = []
        at = 'now()' if owner is None else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        wide = self.args.set_asides
        who = 'hub' if owner is None else owner

        def fresh_machine(taken):
            if wide:
                free = [m for m in self.pool_m if m not in taken]
                return rng.choice(free) if free else None
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        def fresh_part(taken):
            if wide:
                free = [p for p in self.pool_p if p not in taken]
                return rng.choice(free) if free else None
            self.next_part[who] = self.next_part.get(who, 0) + 1
            return (0 if owner is None else owner + 1) * 1000000 + self.next_part[who]

        for _ in range(n):
            name = q(rng.choice(WORDS) + str(rng.randint(1, 99)))
            r = rng.random()
            if rng.random() < 0.45:
                target = len(self.pool_m) if wide else 8
                make = len(machines) < target and r < 0.3
                mid = None if make or not machines else rng.choice(sorted(machines))
                if mid is not None and len(machines) > target and r < 0.5:
                    r = 0.9                 # too many: a delete
                if mid is None:
                    mid = fresh_machine(machines)
                    if mid is None:
                        continue
                    out.append('INSERT INTO machine (id, name, price, spec, updated_at) VALUES (%s, %s, %s, %s, %s)'
                               % (q(mid), name, self.rand_price_r(rng), q(self.rand_spec_r(rng)), at))
                    machines.add(mid)
                elif r < 0.8:
                    out.append('UPDATE machine SET name = %s, price = %s, spec = %s WHERE id = %s'
                               % (name, self.rand_price_r(rng), q(self.rand_spec_r(rng)), q(mid)))
                elif r < 0.95:
                    out.append('DELETE FROM machine WHERE id = %s' % q(mid))
                    machines.discard(mid)
                else:
                    new = fresh_machine(machines)
                    if new is not None:
                        out.append('UPDATE machine SET id = %s WHERE id = %s' % (q(new), q(mid)))
                        machines.discard(mid)
                        machines.add(new)
            else:
                ms = sorted(machines) if wide else []
                target = len(self.pool_p) if wide else 14
                make = len(parts) < target and r < 0.3
                pid = None if make or not parts else rng.choice(sorted(parts))
                if pid is not None and len(parts) > target and r < 0.5:
                    r = 0.9                 # too many: a delete
                if pid is None:
                    pid = fresh_part(parts)
                    if pid is None:
                        continue
                    m = q(rng.choice(ms)) if ms else 'NULL'
                    b = q(rng.choice(ms)) if ms and rng.random() < 0.5 else 'NULL'
                    out.append('INSERT INTO part (id, machine_id, backup_id, qty, note) VALUES (%d, %s, %s, %d, %s)'
                               % (pid, m, b, rng.randint(0, 50), name))
                    parts.add(pid)
                elif r < 0.8:
                    sets = ['qty = %d' % rng.randint(0, 50)]
                    if ms and rng.random() < 0.3:
                        sets.append('machine_id = %s' % q(rng.choice(ms)))
                    if rng.random() < 0.4:
                        sets.append('note = %s' % name)
                    out.append('UPDATE part SET %s WHERE id = %d' % (', '.join(sets), pid))
                elif r < 0.95:
                    out.append('DELETE FROM part WHERE id = %d' % pid)
                    parts.discard(pid)
                else:
                    new = fresh_part(parts)
                    if new is not None:
                        out.append('UPDATE part SET id = %d WHERE id = %d' % (new, pid))
                        parts.discard(pid)
                        parts.add(new)
        return out

    def rand_price_r(self, rng):
        digits = rng.randint(0, 6)
        return str(decimal.Decimal(rng.randint(0, 10 ** 7)) / (10 ** digits))

    def rand_spec_r(self, rng):
        d = {}
        for k in rng.sample(['size', 'colour', 'tags', 'rpm', 'ok'], rng.randint(0, 3)):
            d[k] = rng.choice([1, 2.5, 'red', [1, 2], {'x': 1}, True, None])
        return json.dumps(d, separators=rng.choice([(',', ':'), (', ', ': ')]))

    def conc_client_ops(self, client):
        """A few transactions of many changes on the shared keys: an upload
        of some 30 to 150 changes."""
        machines = set(r[0] for r in self.read(client, 'SELECT id FROM machine'))
        parts = set(r[0] for r in self.read(client, 'SELECT id FROM part'))
        sql = []
        for _ in range(self.rng.randint(2, 5)):
            stmts = self.conc_sql(self.rng, machines, parts, self.rng.randint(8, 30), self.clients.index(client))
            self.stats['ops'] += len(stmts)
            sql.append('BEGIN;\n' + ';\n'.join(stmts) + ';\nCOMMIT;\n')
        p = self.sqlite(client, ''.join(sql), load=True, check=False)
        self.stats['failed_ops'] += p.stderr.count('Error') + p.stderr.count('error')

    def hub_app(self, seed, stop, conn):
        """The hub's app during the parallel syncs: short transactions of
        one to three statements on the shared keys, one every few ms."""
        rng = random.Random(seed)
        conn.autocommit = False
        while not stop.is_set():
            try:
                with conn.cursor() as cur:
                    cur.execute('SELECT id::text FROM machine')
                    machines = set(r[0] for r in cur.fetchall())
                    cur.execute('SELECT id FROM part')
                    parts = set(r[0] for r in cur.fetchall())
                    for stmt in self.conc_sql(rng, machines, parts, rng.randint(1, 2), None):
                        cur.execute(stmt)
                        self.stats['hub_ops'] += 1
                conn.commit()
            except psycopg2.Error as e:
                conn.rollback()
                self.stats['failed_ops'] += 1
                if e.pgcode in ('40P01', '40001'):
                    self.transient['hub app: ' + e.pgcode] += 1
            time.sleep(rng.uniform(0.01, 0.04))
        conn.commit()

    def monitor(self, stop, conn, mine):
        """Sample the hub's backends: how many syncqd transactions (every
        backend in a transaction but the test's own) are in flight at once,
        how many of them hold a transaction id (have written), and what
        they wait for."""
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT backend_xid IS NOT NULL, coalesce(wait_event_type, ''), coalesce(wait_event, '')"
                            "  FROM pg_stat_activity"
                            " WHERE datname = current_database() AND backend_type = 'client backend'"
                            "   AND xact_start IS NOT NULL AND NOT (pid = ANY (%s))", (mine,))
                rows = cur.fetchall()
                inflight = len(rows)
                writing = sum(1 for r in rows if r[0])
                self.conc['samples'] += 1
                if inflight >= 2:
                    self.conc['samples with 2+ in flight'] += 1
                if writing >= 2:
                    self.conc['samples with 2+ writing'] += 1
                self.conc['most in flight'] = max(self.conc['most in flight'], inflight)
                self.conc['most writing'] = max(self.conc['most writing'], writing)
                for r in rows:
                    if r[1] == 'Lock':
                        self.waits[r[2]] += 1
                time.sleep(0.005)

    # (the last line syncqd printed, lower case: an upload's deadlock or
    # serialization failure says its SQLSTATE, hub/upload.c mark_contended)
    TRANSIENT = {'while it was applied; the upload is sent again': 'overtaken more than 5 times',
                 '(sqlstate 40p01)': 'deadlock', 'deadlock': 'deadlock',
                 '(sqlstate 40001)': 'serialization failure', 'could not serialize': 'serialization failure',
                 'lock timeout': 'lock timeout'}

    def conc_syncs(self):
        """Every client's syncqd --once at the same time."""
        for c in self.clients:
            self.snapshot(c)
        procs = []
        for i, c in enumerate(self.clients):
            lp = os.path.join(self.args.dir, 'syncqd.%d.log' % i)
            logf = open(lp, 'w')
            cmd = [self.args.syncqd, '--sqlite', c, '--online', self.args.online, '--once']
            procs.append((c, lp, logf, subprocess.Popen(cmd, stdout=logf, stderr=logf, env=self.env(c))))
        bad = []
        for c, lp, logf, p in procs:
            try:
                rc = p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = 'timeout'
            logf.close()
            with open(lp) as f:
                text = f.read()
            with open(os.path.join(self.args.dir, 'syncqd.log'), 'a') as f:
                f.write('==== syncqd --once on %s (parallel)\n' % os.path.basename(c))
                f.write(text)
            self.stats['syncs'] += 1
            if rc != 0:
                low = text.lower()
                last = [ln for ln in low.splitlines() if ln.startswith('syncqd: ')][-1:] or ['']
                why = next((w for t, w in self.TRANSIENT.items() if t in last[0]), None)
                if rc == 'timeout' or why is None or 'sanitizer' in low or 'runtime error' in low:
                    bad.append('syncqd --once on %s: %s\n%s' % (c, 'no end in 120 s' if rc == 'timeout'
                                                                 else 'exit %d' % rc, text[-1500:]))
                else:
                    self.transient[why] += 1
        if bad:
            raise Failure('\n'.join(bad))

    def rounds_concurrent(self):
        end = time.time() + self.args.seconds
        n = 0
        mon_conn = psycopg2.connect(self.args.hub)
        app_conn = psycopg2.connect(self.args.hub)
        mine = [c.get_backend_pid() for c in (self.hub, mon_conn, app_conn)]
        stop_mon = threading.Event()
        mon = threading.Thread(target=self.monitor, args=(stop_mon, mon_conn, mine), daemon=True)
        try:
            while time.time() < end:
                n += 1
                for c in self.clients:
                    if self.rng.random() < 0.3:
                        self.offset[c] = self.rng.choice(OFFSETS)
                for c in self.clients:
                    self.conc_client_ops(c)
                # the hub's app writes during half the rounds: in the others
                # nothing of the hub's is left to fold, and the uploads have
                # the hub to themselves
                stop = threading.Event()
                app = threading.Thread(target=self.hub_app, args=(self.rng.getrandbits(32), stop, app_conn),
                                       daemon=True)
                if self.rng.random() < 0.5:
                    app.start()
                    self.conc['rounds with the hub app writing'] += 1
                if n == 1:
                    mon.start()
                try:
                    self.conc_syncs()
                finally:
                    stop.set()
                    if app.is_alive():
                        app.join()
        finally:
            stop_mon.set()
            if mon.is_alive():
                mon.join()
            mon_conn.close()
            app_conn.close()
        log('%d rounds of %d parallel syncs (the hub app writing in %d)'
            % (n, len(self.clients), self.conc['rounds with the hub app writing']))
        self.report_overlap()

    def report_overlap(self):
        c = self.conc
        log('overlap on the hub: %d of %d samples had 2+ syncqd transactions in flight (%d had 2+ writing);'
            ' at most %d in flight, %d writing at once' %
            (c['samples with 2+ in flight'], c['samples'], c['samples with 2+ writing'],
             c['most in flight'], c['most writing']))
        log('lock waits seen (samples): %s' % (dict(self.waits) or 'none'))
        log('transient failures (sent again later): %s' % (dict(self.transient) or 'none'))
        if self.args.min_overlap and c['samples with 2+ in flight'] < self.args.min_overlap:
            raise Failure('the syncs hardly overlapped on the hub (%d samples with 2+ in flight, wanted %d)'
                          % (c['samples with 2+ in flight'], self.args.min_overlap))

    # ---- the run -----------------------------------------------------------

    def setup(self):
        self.hubq(HUB_DDL)
        for i in range(self.args.clients):
            c = os.path.join(self.args.dir, 'client%d.db' % i)
            for suffix in ('', '-wal', '-shm', '-syncq-wake'):
                if os.path.exists(c + suffix):
                    os.unlink(c + suffix)
            self.sqlite(c, CLIENT_DDL, load=True)
            self.clients.append(c)
            self.sync(c)

    def rounds(self):
        end = time.time() + self.args.seconds
        n = 0
        while time.time() < end:
            n += 1
            for c in self.clients:
                if self.rng.random() < 0.3:
                    self.offset[c] = self.rng.choice(OFFSETS)
            actors = self.clients + ['hub']
            self.rng.shuffle(actors)
            for a in actors:
                if self.rng.random() < 0.7:
                    if a == 'hub':
                        self.hub_ops()
                    else:
                        self.client_ops(a)
            order = self.clients[:]
            self.rng.shuffle(order)
            for c in order[:self.rng.randint(1, len(order))]:
                kill = self.rng.uniform(0.0, 0.4) if self.rng.random() < 0.25 else None
                self.sync(c, kill)
        log('%d rounds' % n)

    def quiesce(self):
        for p in range(8):
            before = self.hubq('SELECT coalesce(max(seq), 0) FROM sync_queue')[0][0]
            for c in self.clients:
                self.sync(c)
            for c in self.clients:
                self.sync(c)
            after = self.hubq('SELECT coalesce(max(seq), 0) FROM sync_queue')[0][0]
            if before == after and all(self.pending(c) == 0 for c in self.clients):
                log('quiet after %d passes' % (p + 1))
                return
        raise Failure('no quiescence after 8 passes of syncs')

    # ---- the checks --------------------------------------------------------

    def client_rows(self, client):
        return (self.read(client, 'SELECT quote(id), quote(name), quote(price), quote(spec), quote(updated_at)'
                                  ' FROM machine ORDER BY id'),
                self.read(client, 'SELECT quote(id), quote(machine_id), quote(backup_id), quote(qty), quote(note)'
                                  ' FROM part ORDER BY id'))

    @staticmethod
    def same_value(hub, cli, kind):
        if hub is None or cli is None:
            return hub is None and cli is None
        if kind == 'uuid':
            return str(hub) == cli
        if kind == 'numeric':
            return decimal.Decimal(str(cli)) == hub
        if kind == 'json':
            return json.loads(cli) == hub
        if kind == 'time':
            t = datetime.datetime.fromisoformat(cli.replace('Z', '+00:00'))
            if t.tzinfo is None:
                t = t.replace(tzinfo=datetime.timezone.utc)
            return t == hub
        return hub == cli

    def check_rows(self):
        first = self.client_rows(self.clients[0])
        for c in self.clients[1:]:
            other = self.client_rows(c)
            if other != first:
                raise Failure('clients differ: %s and %s\n%s\n%s' % (self.clients[0], c,
                                                                    diff(first, other), ''))
        hub_m = self.hubq('SELECT id, name, price, spec, updated_at FROM machine ORDER BY id::text')
        hub_p = self.hubq('SELECT id, machine_id, backup_id, qty, note FROM part ORDER BY id')
        cli_m = self.read(self.clients[0], 'SELECT id, name, price, spec, updated_at FROM machine ORDER BY id')
        cli_p = self.read(self.clients[0], 'SELECT id, machine_id, backup_id, qty, note FROM part ORDER BY id')
        kinds_m = ['uuid', 'text', 'numeric', 'json', 'time']
        kinds_p = ['int', 'uuid', 'uuid', 'int', 'text']
        for what, hub, cli, kinds in (('machine', hub_m, cli_m, kinds_m), ('part', hub_p, cli_p, kinds_p)):
            if len(hub) != len(cli):
                raise Failure('%s: the hub holds %d rows, the clients %d\nhub: %s\nclient: %s'
                              % (what, len(hub), len(cli), hub, cli))
            for h, c in zip(hub, cli):
                for hv, cv, k in zip(h, c, kinds):
                    if not self.same_value(hv, cv, k):
                        raise Failure('%s: hub row %r differs from client row %r' % (what, h, c))
        log('%d machines and %d parts identical on the hub and %d clients'
            % (len(hub_m), len(hub_p), len(self.clients)))
        return hub_m, hub_p

    def check_accounting(self, hub_m, hub_p):
        final = {}
        for r in hub_m:
            final[('machine', json.dumps({'id': str(r[0])}))] = r
        for r in hub_p:
            final[('part', json.dumps({'id': r[0]}))] = r
        nodes = {c: self.node_id(c) for c in self.clients}
        applied = set()
        newest = {}                # (origin, table, key) -> its newest version on the hub
        for origin, t, pk, us, rep in self.hubq(
                "SELECT origin::text, table_name, pk::text, (extract(epoch FROM changed_at) * 1000000)::bigint,"
                " (extract(epoch FROM replaces) * 1000000)::bigint FROM sync_queue"):
            key = (origin, t, norm_pk(pk))
            applied.add(key + (us,))
            newest[key] = max(newest.get(key, us), us)
            if rep is not None:
                applied.add(key + (rep,))
        # deletes on the hub, any node's: a client's delete that a newer
        # delete of the row overtook lost nothing (the hub keeps no
        # conflict for two deletes), even if another node made the key again
        deleted = {}
        for t, pk, us in self.hubq(
                "SELECT table_name, pk::text, (extract(epoch FROM changed_at) * 1000000)::bigint"
                " FROM sync_queue WHERE op = 'D'"):
            k = (t, norm_pk(pk))
            deleted[k] = max(deleted.get(k, us), us)
        lost = set()
        for origin, t, pk, us in self.hubq(
                "SELECT loser_origin::text, table_name, pk::text,"
                " (extract(epoch FROM loser_changed_at) * 1000000)::bigint FROM sync_conflicts"):
            lost.add((origin, t, norm_pk(pk), us))
        parked = set((r[0], r[1]) for r in self.hubq('SELECT node_id::text, seq FROM sync_errors'))
        # a correction answers the client's change (for_node, for_seq):
        # the hub re-stamped it, or refused it for a missing parent
        answered = set((r[0], r[1]) for r in self.hubq(
            'SELECT for_node::text, for_seq FROM sync_queue WHERE for_node IS NOT NULL'))
        later = {}
        for (client, seq), (t, op, pk, row, at) in self.changes.items():
            k = (client, t, norm_pk(pk))
            later[k] = max(later.get(k, 0), seq)
        counts = {'applied': 0, 'in the final state': 0, 'overruled': 0, 'set aside': 0,
                  'answered by a correction': 0, 'superseded by its own node': 0}
        for (client, seq), (t, op, pk, row, at) in sorted(self.changes.items()):
            node = nodes[client]
            us = instant_us(at)
            key = (node, t, norm_pk(pk))
            if key + (us,) in applied:
                counts['applied'] += 1
            elif key + (us,) in lost:
                counts['overruled'] += 1
            elif (node, seq) in parked:
                counts['set aside'] += 1
            elif (node, seq) in answered:
                counts['answered by a correction'] += 1
            elif in_final(final, t, pk, op, row):
                counts['in the final state'] += 1
            elif later[(client, t, norm_pk(pk))] > seq:
                counts['superseded by its own node'] += 1
            elif op == 'D' and deleted.get((t, norm_pk(pk)), -1) >= us:
                counts['overtaken by a newer delete'] = counts.get('overtaken by a newer delete', 0) + 1
            elif newest.get(key, -1) >= us:
                # applied on the hub under a version of its own node's at
                # least as new (the capture stamped it afresh after a
                # cascade reached the row first)
                counts['applied, stamped afresh'] = counts.get('applied, stamped afresh', 0) + 1
            else:
                raise Failure('change %d of %s (%s %s %s %s at %s) is neither applied on the hub,'
                              ' nor in the final state, nor in sync_conflicts or sync_errors'
                              % (seq, client, op, t, pk, row, at))
        log('%d client changes accounted for: %s' % (len(self.changes), counts))

    def check_order(self):
        bad = self.hubq("""
            WITH r AS (
                SELECT table_name, pk::text AS pk, seq, changed_at, origin::text AS origin,
                       row_number() OVER (PARTITION BY table_name, pk::text ORDER BY seq DESC) AS n,
                       max(changed_at) OVER (PARTITION BY table_name, pk::text) AS top
                FROM sync_queue WHERE for_node IS NULL)
            SELECT table_name, pk, seq, changed_at, top FROM r WHERE n = 1 AND changed_at < top""")
        if bad:
            raise Failure('the last write of a row has not its greatest version: %s' % bad[:5])
        log('on the hub the last write of every row has its greatest version')

    def check_history(self):
        """No write of a client's change on the hub went back in time: in
        the order of the writes (seq), no client's change of a row was
        written after a write of that row with a greater version. (The end
        state alone misses an upload that wrote an older change over a
        newer one if a later round wrote the row again.) Not counted: a
        client's delete queued after a newer write of the hub's own app.
        An upload queues the delete of a row the hub lacks as a relay after
        its statements (act_on_report, "missing"); the hub's app, which
        takes no version lock, may insert that row meanwhile and commit
        after the upload's check for hub writes, so its insert gets the
        earlier seq although the upload's delete, which found no row, came
        first. (A delete that found the hub app's row would have been
        rolled back as overtaken.) Seed 1217306900 over HTTP, with
        set-asides, met it."""
        rows = self.hubq("""
            WITH v AS (
                SELECT table_name, pk::text AS pk, seq, op, origin, changed_at,
                       lpad((extract(epoch FROM changed_at) * 1000000)::bigint::text, 20, '0')
                         || ' ' || origin::text COLLATE "C" AS ver
                FROM sync_queue WHERE for_node IS NULL),
            q AS (
                SELECT *, max(ver) OVER (PARTITION BY table_name, pk ORDER BY seq
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
                FROM v)
            SELECT origin = sync_node_id(), table_name, pk, seq, changed_at, origin::text, before,
                   op = 'D' AND split_part(before, ' ', 2) = sync_node_id()::text
              FROM q WHERE ver < before ORDER BY seq""")
        hub = [r for r in rows if r[0]]
        relays = [r for r in rows if not r[0] and r[7]]
        bad = [r[:7] for r in rows if not r[0] and not r[7]]
        if relays:
            log('%d deletes of client changes relayed after a newer write of the hub\'s app'
                ' (a delete of a row the hub lacked, relayed after the upload\'s statements)' % len(relays))
        if bad:
            raise Failure('%d writes of client changes on the hub went back in time (an older change written'
                          ' over a newer one), e.g.\n  %s' % (len(bad), '\n  '.join(
                              '%s %s seq %d at %s by %s after %s' % r[1:] for r in bad[:8])))
        log('no client change written on the hub over a newer version (%d writes of the hub\'s own did:'
            ' re-queued by the fold)' % len(hub) if hub else
            'no write on the hub went back in time (a row\'s versions grow in the order of its writes)')

    def check_lww(self, hub_m, hub_p):
        """Every row the hub holds, or does not hold, is the row of the change
        with the greatest version among all changes of that row the hub
        knows of: its queue (for_node IS NULL) and the losers in
        sync_conflicts. No loser is newer than the final version."""
        ver = "(extract(epoch FROM %s) * 1000000)::bigint"
        cands = collections.defaultdict(list)     # (table, key) -> [(us, origin, is_queue, seq, op, same)]
        for t, pk, us, origin, seq, op, same in self.hubq(
                "SELECT q.table_name, q.pk::text, " + ver % 'q.changed_at' + ", q.origin::text, q.seq, q.op,"
                "       CASE q.table_name"
                "         WHEN 'machine' THEN (SELECT m IS NOT DISTINCT FROM json_populate_record(NULL::machine, q.row_data)"
                "                                FROM machine m WHERE m.id = (q.pk->>'id')::uuid)"
                "         WHEN 'part' THEN (SELECT p IS NOT DISTINCT FROM json_populate_record(NULL::part, q.row_data)"
                "                             FROM part p WHERE p.id = (q.pk->>'id')::bigint) END"
                "  FROM sync_queue q WHERE q.for_node IS NULL"):
            cands[(t, norm_pk(pk))].append((us, origin, 1, seq, op, same))
        for t, pk, us, origin, op in self.hubq(
                "SELECT table_name, pk::text, " + ver % 'loser_changed_at' + ", loser_origin::text, loser_op"
                "  FROM sync_conflicts"):
            cands[(t, norm_pk(pk))].append((us, origin, 0, 0, op, None))
        final = set()
        for r in hub_m:
            final.add(('machine', json.dumps({'id': str(r[0])})))
        for r in hub_p:
            final.add(('part', json.dumps({'id': r[0]})))
        for k in final:
            if k not in cands:
                raise Failure('last writer wins: the hub holds %s %s, which no change of the hub\'s knows' % k)
        bad = []
        for k, cs in sorted(cands.items()):
            top = max(cs, key=lambda c: (c[0], c[1], c[2], c[3]))
            if not top[2]:
                win = max((c for c in cs if c[2]), key=lambda c: (c[0], c[1], c[3]), default=None)
                bad.append('%s %s: an overruled %s at %d by %s is newer than the row\'s final version %s'
                           % (k[0], k[1], top[4], top[0], top[1], win and '%s at %d by %s' % (win[4], win[0], win[1])))
                continue
            if top[4] == 'D':
                if k in final:
                    bad.append('%s %s: the newest change (a delete at %d by %s) but the hub still holds the row'
                               % (k[0], k[1], top[0], top[1]))
            elif k not in final:
                bad.append('%s %s: the newest change (%s at %d by %s, seq %d) but the hub holds no such row'
                           % (k[0], k[1], top[4], top[0], top[1], top[3]))
            elif not top[5]:
                bad.append('%s %s: the hub\'s row is not the row of the newest change (%s at %d by %s, seq %d)'
                           % (k[0], k[1], top[4], top[0], top[1], top[3]))
        if bad:
            raise Failure('last writer wins broken for %d rows:\n  %s' % (len(bad), '\n  '.join(bad[:10])))
        log('last writer wins: each of %d keys holds the row of its newest change of %d the hub knows of'
            % (len(cands), sum(len(c) for c in cands.values())))

    def summary(self):
        conflicts = self.hubq('SELECT count(*) FROM sync_conflicts')[0][0]
        errors = self.hubq('SELECT count(*) FROM sync_errors')[0][0]
        corrections = self.hubq('SELECT count(*) FROM sync_queue WHERE for_node IS NOT NULL')[0][0]
        for c in self.clients:
            conflicts += self.read(c, 'SELECT count(*) FROM sync_conflicts')[0][0]
            errors += self.read(c, 'SELECT count(*) FROM sync_errors')[0][0]
        log('%(ops)d client statements (%(failed_ops)d refused by the app\'s own constraints),'
            ' %(hub_ops)d hub statements, %(syncs)d syncs, %(kills)d syncqd killed' % self.stats)
        log('%d conflicts, %d set aside, %d corrections' % (conflicts, errors, corrections))


def norm_pk(pk):
    d = json.loads(pk)
    return json.dumps({k: (v.lower() if isinstance(v, str) else v) for k, v in sorted(d.items())})


def instant_us(at):
    t = datetime.datetime.fromisoformat(at.replace('Z', '+00:00'))
    d = t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


def in_final(final, t, pk, op, row):
    k = (t, json.dumps({'id': norm_pk_value(json.loads(pk)['id'])}))
    if op == 'D':
        return k not in final
    return k in final


def norm_pk_value(v):
    return v.lower() if isinstance(v, str) else v


def diff(a, b):
    out = []
    for name, x, y in (('machine', a[0], b[0]), ('part', a[1], b[1])):
        sx, sy = set(x), set(y)
        for r in sorted(sx - sy):
            out.append('  %s only in the first: %s' % (name, r))
        for r in sorted(sy - sx):
            out.append('  %s only in the second: %s' % (name, r))
    return '\n'.join(out[:20])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--hub', required=True)
    ap.add_argument('--online', required=True)
    ap.add_argument('--syncqd', required=True)
    ap.add_argument('--ext', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--clients', type=int, default=3)
    ap.add_argument('--concurrent', action='store_true',
                    help='every client syncs at the same time, the hub app writing too')
    ap.add_argument('--set-asides', action=argparse.BooleanOptionalAction, default=True,
                    help='--concurrent: records made under a small fixed set of keys by any node'
                         ' (--no-set-asides: under new keys), parts referring to machines'
                         ' (--no-set-asides: to none); on by default')
    ap.add_argument('--min-overlap', type=int, default=0,
                    help='--concurrent: fail unless this many samples saw 2+ syncqd transactions on the hub')
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randint(1, 2 ** 31)
    log('seed %d (replay: SYNCQ_SEED=%d)' % (args.seed, args.seed))
    w = World(args)
    try:
        w.setup()
        if args.concurrent:
            w.rounds_concurrent()
        else:
            w.rounds()
        w.quiesce()
        hub_m, hub_p = w.check_rows()
        w.check_accounting(hub_m, hub_p)
        w.check_order()
        w.check_history()
        w.check_lww(hub_m, hub_p)
        w.summary()
    except Failure as e:
        w.summary()
        print('FAIL (seed %d): %s' % (args.seed, e), flush=True)
        return 1
    print('ok (seed %d)' % args.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
