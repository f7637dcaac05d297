#!/usr/bin/python3
"""types_orm.py — one SQLAlchemy model on the hub and on SQLite clients.

Driven by tests/integration/types_orm.sh, which runs syncqd between the
steps. Every value is written and read through the ORM (SQLAlchemy 1.4,
psycopg2 on the hub, Python's sqlite3 on the clients) and compared as the
typed value the app sees: datetimes, Decimals, dicts, floats with +-inf,
bytes, UUIDs, timedeltas, lists.

    types_orm.py schema URL            create the model's tables
    types_orm.py write NODE URL        NODE writes its rows (hub, a or b)
    types_orm.py update NODE URL       NODE changes the rows of another node
    types_orm.py check PHASE URL...    every row, read back, as expected
    types_orm.py dst-write NODE URL    NODE writes its half of the DST rows
    types_orm.py dst-query URL         range queries and ORDER BY, printed
    types_orm.py dst-expect            what the instants themselves answer
    types_orm.py dst-check URL...      each URL answers as they do
    types_orm.py tag-write URL         a uuid-keyed row, spelt upper case
    types_orm.py tag-check LABEL URL...  that row, once, in PostgreSQL's spelling

URL is a SQLAlchemy URL: postgresql+psycopg2://... or sqlite:////path.
"""
import datetime as dt
import decimal
import math
import sys
import uuid
import warnings

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()
# SQLite has no decimal type: SQLAlchemy says so on every Numeric read
# (the values here have at most 15 digits, which a double holds exactly).
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively")


class GUID(sa.types.TypeDecorator):
    """A uuid: PostgreSQL's uuid on the hub, its text on SQLite."""
    impl = sa.CHAR(36)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        return dialect.type_descriptor(sa.CHAR(36))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name == "postgresql":
            return value
        return str(value)

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(value)


class CIText(sa.types.UserDefinedType):
    """citext on the hub (TEXT on SQLite)."""
    cache_ok = True

    def get_col_spec(self, **kw):
        return "CITEXT"


JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
INTS = postgresql.ARRAY(sa.Integer).with_variant(sa.JSON(), "sqlite")
INET = postgresql.INET().with_variant(sa.String(), "sqlite")
CITEXT = CIText().with_variant(sa.Text(), "sqlite")


class Kind(Base):
    """Every type of docs/replication.md's table an ORM app uses."""
    __tablename__ = "kinds"
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    small = sa.Column(sa.SmallInteger)
    big = sa.Column(sa.BigInteger)
    qty = sa.Column(sa.Integer)
    price = sa.Column(sa.Numeric(12, 4))
    total = sa.Column(sa.Numeric(18, 4), sa.Computed("qty * price", persisted=True))
    ratio = sa.Column(sa.Float)
    done = sa.Column(sa.Boolean)
    name = sa.Column(sa.String(80))
    notes = sa.Column(sa.Text)
    blob = sa.Column(sa.LargeBinary)
    at = sa.Column(sa.DateTime)
    at_tz = sa.Column(sa.DateTime(timezone=True))
    day = sa.Column(sa.Date)
    clock = sa.Column(sa.Time)
    span = sa.Column(sa.Interval)
    doc = sa.Column(sa.JSON)
    docb = sa.Column(JSONB)
    ref = sa.Column(GUID)
    mood = sa.Column(sa.Enum("calm", "busy", "stormy", name="mood"))
    ints = sa.Column(INTS)
    addr = sa.Column(INET)
    label = sa.Column(CITEXT)


class Stamp(Base):
    """Timestamps around the DST changes of America/New_York."""
    __tablename__ = "stamps"
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    at = sa.Column(sa.DateTime, nullable=False)
    at_tz = sa.Column(sa.DateTime(timezone=True), nullable=False)


class Tag(Base):
    """A table keyed by a uuid."""
    __tablename__ = "tags"
    id = sa.Column(GUID, primary_key=True)
    label = sa.Column(sa.Text)


NODES = {"hub": 100, "a": 200, "b": 300}
UTC = dt.timezone.utc


def values(node, i, phase):
    """The values of row NODES[node] + i after PHASE (1 written, 2 updated)."""
    k = NODES[node] + i + (1000 if phase == 2 else 0)
    floats = [0.1, 1e300, float("inf"), float("-inf"), -1.5e-10, 5e-324,
              2.5, 1 / 3, 123456.789]
    at = dt.datetime(2025, 3, 9, 6, 59, 59) + dt.timedelta(microseconds=k * 137,
                                                           seconds=k)
    v = dict(
        small=-32768 + k, big=9223372036854775807 - k, qty=k % 7,
        price=decimal.Decimal("%d.%04d" % (k * 1234, k % 10000)),
        ratio=floats[k % len(floats)], done=k % 2 == 0,
        name="row %d caf\u00e9 \u2603 \"q\" \\ %d" % (k, i),
        notes="line 1\nline 2\t\U0001F600" * (1 + k % 3),
        blob=bytes((k + j) % 256 for j in range(k % 9)) + b"\x00\xff",
        at=at if i != 3 else at.replace(microsecond=0),
        at_tz=(at + dt.timedelta(hours=8)).replace(tzinfo=UTC),
        day=dt.date(2024, 2, 29) + dt.timedelta(days=k),
        clock=dt.time(k % 24, k % 60, (k * 7) % 60, (k * 31) % 1000000 if i != 2 else 0),
        span=[dt.timedelta(days=2, seconds=5400, microseconds=5),
              dt.timedelta(hours=-23), dt.timedelta(0),
              dt.timedelta(days=400, seconds=1, microseconds=500000)][k % 4],
        doc={"k": [1, 2.5, None, "x"], "n": k, "nested": {"ok": True}},
        docb=[{"a": k}, "str", 12345678901234567, False] if i % 2 else "just text",
        ref=uuid.UUID(int=k * 0x1000000000001 + 0xA0EEBC999C0B4EF8),
        mood=["calm", "busy", "stormy"][k % 3],
        ints=[k, -k, None, 2147483647] if i != 1 else [],
        addr="10.%d.%d.1/24" % (k % 250, i),
        label="MiXeD %d" % k,
    )
    if i == 4:      # every column NULL
        v = {c: None for c in v}
    return v


def rows(phase):
    """Every row of kinds after PHASE: id -> values."""
    out = {}
    writers = {"hub": "b", "a": "hub", "b": "a"}   # who updates whose rows
    for node, base in NODES.items():
        for i in range(5):
            out[base + i] = values(node, i, 1)
    if phase == 2:
        for updater, owner in writers.items():
            for i in range(5):
                out[NODES[owner] + i] = values(owner, i, 2)
    return out


def engine(url):
    return sa.create_engine(url, future=True)


def utc_naive(v):
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def same(col, want, got):
    """Compare as the typed values the app sees."""
    if want is None or got is None:
        return want is None and got is None
    if col in ("at", "at_tz"):
        # the hub's timestamptz comes back aware, SQLite's naive (UTC)
        return isinstance(got, dt.datetime) and utc_naive(want) == utc_naive(got)
    if col == "ratio":
        # a float, the same double, the same sign of zero
        return (isinstance(got, float) and got == want
                and math.copysign(1, got) == math.copysign(1, want))
    return type(got) == type(want) and got == want


def cmd_schema(url):
    e = engine(url)
    with e.begin() as c:
        if e.dialect.name == "postgresql":
            c.execute(sa.text("CREATE EXTENSION IF NOT EXISTS citext"))
    Base.metadata.create_all(e)


def cmd_write(node, url):
    with Session(engine(url)) as s:
        for i in range(5):
            s.add(Kind(id=NODES[node] + i, **values(node, i, 1)))
        s.commit()


def cmd_update(node, url):
    owner = {"hub": "b", "a": "hub", "b": "a"}[node]
    with Session(engine(url)) as s:
        for i in range(5):
            row = s.get(Kind, NODES[owner] + i)
            assert row is not None, "row %d of %s missing on %s" % (NODES[owner] + i, owner, node)
            for c, v in values(owner, i, 2).items():
                setattr(row, c, v)
        s.commit()


def cmd_check(phase, *urls):
    for url in urls:
        check_one(phase, url)


def check_one(phase, url):
    want = rows(int(phase))
    bad = []
    with Session(engine(url)) as s:
        got = {r.id: r for r in s.query(Kind)}
        if sorted(got) != sorted(want):
            bad.append("ids: want %s, got %s" % (sorted(want), sorted(got)))
        for k, vals in want.items():
            r = got.get(k)
            if r is None:
                continue
            for c, v in vals.items():
                g = getattr(r, c)
                if not same(c, v, g):
                    bad.append("row %d %s: want %r, got %r" % (k, c, v, g))
            # the generated column, computed by each node
            if vals["qty"] is not None and r.total != vals["qty"] * vals["price"]:
                bad.append("row %d total: want %r, got %r" % (k, vals["qty"] * vals["price"], r.total))
    if bad:
        print("%s:\n%s" % (url.split("?")[0], "\n".join(bad[:40])))
        sys.exit(1)
    print("%d rows as written (phase %s) on %s" % (len(want), phase, url.split("?")[0]))


# The DST changes of America/New_York in 2025, in UTC.
EDGES = [dt.datetime(2025, 3, 9, 7, 0, 0), dt.datetime(2025, 11, 2, 6, 0, 0)]
OFFSETS = [-3600, -1, -0.5, -1e-6, 0, 1e-6, 0.5, 1, 3600]


def stamp_values():
    out = {}
    n = 0
    for e in EDGES:
        for off in OFFSETS:
            n += 1
            at = e + dt.timedelta(seconds=off)
            out[n] = at
    return out


def cmd_dst_write(node, url):
    half = node == "hub"
    with Session(engine(url)) as s:
        for k, at in stamp_values().items():
            if (k % 2 == 0) == half:
                s.add(Stamp(id=k, at=at, at_tz=at.replace(tzinfo=UTC)))
        s.commit()


def cmd_dst_check(*urls):
    """Every node answers the DST queries as the instants' own order does."""
    import contextlib
    import io
    want = io.StringIO()
    with contextlib.redirect_stdout(want):
        cmd_dst_expect()
    for url in urls:
        got = io.StringIO()
        with contextlib.redirect_stdout(got):
            cmd_dst_query(url)
        if got.getvalue() != want.getvalue():
            print("%s answers the DST queries\n%swhere the instants say\n%s"
                  % (url.split("?")[0], got.getvalue(), want.getvalue()))
            sys.exit(1)
        print("DST queries as the instants say on %s" % url.split("?")[0])


def cmd_dst_query(url):
    """Range queries and ORDER BY, as an app runs them through the ORM."""
    lines = []
    with Session(engine(url)) as s:
        lines.append("all " + " ".join(str(r.id) for r in s.query(Stamp).order_by(Stamp.at, Stamp.id)))
        lines.append("desc " + " ".join(str(r.id) for r in s.query(Stamp).order_by(Stamp.at_tz.desc(), Stamp.id)))
        for e in EDGES:
            for lo, hi in [(e, e + dt.timedelta(hours=1)), (e - dt.timedelta(seconds=1), e),
                           (e - dt.timedelta(microseconds=1), e + dt.timedelta(microseconds=1)),
                           (e + dt.timedelta(seconds=0.5), e + dt.timedelta(seconds=3600))]:
                ids = [r.id for r in s.query(Stamp).filter(Stamp.at >= lo, Stamp.at < hi).order_by(Stamp.at)]
                ids_tz = [r.id for r in s.query(Stamp).filter(
                    Stamp.at_tz >= lo.replace(tzinfo=UTC), Stamp.at_tz <= hi.replace(tzinfo=UTC)).order_by(Stamp.at_tz)]
                eq = [r.id for r in s.query(Stamp).filter(Stamp.at == e)]
                lines.append("[%s, %s) %s | <= %s | = %s" % (lo, hi, ids, ids_tz, eq))
    print("\n".join(lines))


def cmd_dst_expect():
    """What every node must answer: the instants' own order."""
    vals = stamp_values()
    lines = ["all " + " ".join(str(k) for k in sorted(vals, key=lambda k: (vals[k], k)))]
    epoch = dt.datetime(1970, 1, 1)
    lines.append("desc " + " ".join(str(k) for k in sorted(
        vals, key=lambda k: (-(vals[k] - epoch).total_seconds(), k))))
    for e in EDGES:
        for lo, hi in [(e, e + dt.timedelta(hours=1)), (e - dt.timedelta(seconds=1), e),
                       (e - dt.timedelta(microseconds=1), e + dt.timedelta(microseconds=1)),
                       (e + dt.timedelta(seconds=0.5), e + dt.timedelta(seconds=3600))]:
            ids = sorted((k for k, v in vals.items() if lo <= v < hi), key=lambda k: vals[k])
            ids_tz = sorted((k for k, v in vals.items() if lo <= v <= hi), key=lambda k: vals[k])
            eq = [k for k, v in vals.items() if v == e]
            lines.append("[%s, %s) %s | <= %s | = %s" % (lo, hi, ids, ids_tz, eq))
    print("\n".join(lines))


TAG = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


def cmd_tag_write(url):
    """An app that writes uuids in upper case (raw SQL, as another ORM would)."""
    with engine(url).begin() as c:
        c.execute(sa.text("INSERT INTO tags (id, label) VALUES (:i, 'from the client')"),
                  {"i": str(TAG).upper()})


def cmd_tag_check(label, *urls):
    for url in urls:
        tag_check_one(url, label)


def tag_check_one(url, label):
    with Session(engine(url)) as s:
        got = [(r.id, r.label) for r in s.query(Tag)]
    with engine(url).connect() as c:
        raw = [r[0] for r in c.execute(sa.text("SELECT CAST(id AS TEXT) FROM tags"))]
    if got != [(TAG, label)] or raw != [str(TAG)]:
        print("tags: want one row %s %r, got %r (stored as %r)" % (TAG, label, got, raw))
        sys.exit(1)
    print("one tag, spelt %s, on %s" % (raw[0], url.split("?")[0]))


def main(argv):
    cmd = argv[1]
    if cmd == "schema":
        cmd_schema(argv[2])
    elif cmd == "write":
        cmd_write(argv[2], argv[3])
    elif cmd == "update":
        cmd_update(argv[2], argv[3])
    elif cmd == "check":
        cmd_check(argv[2], *argv[3:])
    elif cmd == "dst-write":
        cmd_dst_write(argv[2], argv[3])
    elif cmd == "dst-query":
        cmd_dst_query(argv[2])
    elif cmd == "dst-check":
        cmd_dst_check(*argv[2:])
    elif cmd == "dst-expect":
        cmd_dst_expect()
    elif cmd == "tag-write":
        cmd_tag_write(argv[2])
    elif cmd == "tag-check":
        cmd_tag_check(argv[2], *argv[3:])
    else:
        sys.exit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
