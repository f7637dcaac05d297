"""app.py URL COMMAND [ARG]...: a SQLAlchemy app with integer keys the
database assigns and the default ORM mapping (issue 13), run on the hub
(postgresql://) and on clients (sqlite:///FILE, the stock sqlite3 driver:
syncq is never loaded).

  create PREFIX N      N machines, each with 3 parts, a maintenance record,
                       an operator and the association row between them;
                       every name starts with PREFIX
  schema               create the tables (PostgreSQL: serial keys; SQLite:
                       INTEGER PRIMARY KEY, a rowid alias)
  edit NAME NOTE       the maintenance note of machine NAME becomes NOTE,
                       the machine loaded again after a sync (the reload
                       pattern of README)
  drop NAME            delete machine NAME and everything under it
  dump                 every record, by name, each with its parent's name
                       and its own key; exit 1 if a child's parent is not
                       its own (PREFIX and number of the names agree)
"""
import sys

from sqlalchemy import Column, ForeignKey, Integer, String, Table, create_engine, select, text
from sqlalchemy.orm import Session, declarative_base, relationship

Base = declarative_base()

machine_operators = Table(
    "machine_operators", Base.metadata,
    Column("machine_id", ForeignKey("machines.id"), primary_key=True),
    Column("operator_id", ForeignKey("operators.id"), primary_key=True),
)


class Machine(Base):
    __tablename__ = "machines"
    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False)
    parts = relationship("Part", back_populates="machine", cascade="all, delete-orphan")
    records = relationship("Maintenance", back_populates="machine", cascade="all, delete-orphan")
    operators = relationship("Operator", secondary=machine_operators)


class Part(Base):
    __tablename__ = "parts"
    id = Column(Integer, primary_key=True)
    machine_id = Column(Integer, ForeignKey("machines.id"), nullable=False)
    name = Column(String(80), nullable=False)
    machine = relationship("Machine", back_populates="parts")


class Maintenance(Base):
    __tablename__ = "maintenance"
    id = Column(Integer, primary_key=True)
    machine_id = Column(Integer, ForeignKey("machines.id"), nullable=False)
    note = Column(String(200), nullable=False)
    machine = relationship("Machine", back_populates="records")


class Operator(Base):
    __tablename__ = "operators"
    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False)


url, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
engine = create_engine(url)

if command == "schema":
    Base.metadata.create_all(engine)
elif command == "create":
    prefix, n = args[0], int(args[1])
    with Session(engine) as s:
        for i in range(n):
            tag = "%s%d" % (prefix, i)
            m = Machine(name="machine " + tag)
            m.parts = [Part(name="part %s.%d" % (tag, j)) for j in range(3)]
            m.records = [Maintenance(note="record " + tag)]
            m.operators = [Operator(name="operator " + tag)]
            s.add(m)
            s.commit()          # one transaction per machine, as a form post
            print(m.id)         # the key the app holds now
elif command == "edit":
    with Session(engine) as s:
        m = s.execute(select(Machine).where(Machine.name == args[0])).scalar_one()
        m.records[0].note = args[1]
        s.commit()
elif command == "drop":
    with Session(engine) as s:
        m = s.execute(select(Machine).where(Machine.name == args[0])).scalar_one()
        m.operators = []
        s.delete(m)
        s.commit()
elif command == "dump":
    bad = 0
    with Session(engine) as s:
        def tag(name):
            return name.split(" ")[1].split(".")[0]
        for m in s.execute(select(Machine).order_by(Machine.name)).scalars():
            print("machine %s = %d" % (m.name, m.id))
            for p in sorted(m.parts, key=lambda p: p.name):
                print("  part %s = %d" % (p.name, p.id))
                bad += tag(p.name) != tag(m.name)
            for r in sorted(m.records, key=lambda r: r.note):
                print("  maintenance %s = %d" % (r.note, r.id))
                bad += tag(r.note) != tag(m.name)
            for o in sorted(m.operators, key=lambda o: o.name):
                print("  operator %s = %d" % (o.name, o.id))
                bad += tag(o.name) != tag(m.name)
        for o in s.execute(select(Operator).order_by(Operator.name)).scalars():
            print("operator %s = %d" % (o.name, o.id))
        for t, col in (("parts", "name"), ("maintenance", "note")):
            for (name,) in s.execute(text("SELECT %s FROM %s WHERE machine_id NOT IN"
                                          " (SELECT id FROM machines)" % (col, t))):
                print("orphan %s %s" % (t, name))
                bad += 1
        for (mid, oid) in s.execute(text("SELECT machine_id, operator_id FROM machine_operators"
                                         " WHERE machine_id NOT IN (SELECT id FROM machines)"
                                         "    OR operator_id NOT IN (SELECT id FROM operators)")):
            print("orphan machine_operators %d %d" % (mid, oid))
            bad += 1
    if bad:
        print("%d records under another record's parent" % bad)
        sys.exit(1)
else:
    sys.exit("app.py: unknown command %s" % command)
