"""parts_app.py URL FIRST STOP OUT SEED: a small SQLAlchemy ORM app, one
Session per unit of work, as a field or head-office app writes: it inserts
parts (ids from FIRST on) and updates earlier ones until the file STOP exists
(or 240 s pass), retrying a unit of work the database refused (a busy SQLite
file), then writes OUT: each id's values as last committed, and its retries."""
import json, os, random, sys, time
from sqlalchemy import create_engine, Column, Integer, String
from sqlalchemy.orm import declarative_base, Session
url, first, stop, out, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rnd = random.Random(seed)
Base = declarative_base()
class Part(Base):
    __tablename__ = "parts"
    id = Column(Integer, primary_key=True, autoincrement=False)
    name = Column(String(40), nullable=False)
    qty = Column(Integer, nullable=False)
eng = create_engine(url, connect_args={"timeout": 10} if url.startswith("sqlite") else {})
rows, n, retries = {}, 0, 0
deadline = time.monotonic() + 240
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        with Session(eng) as s, s.begin():
            if rows and rnd.random() < 0.4:
                rid = rnd.choice(sorted(rows))
                p = s.get(Part, rid)
                p.qty += 1
                p.name = "u%d.%d" % (rid, p.qty)
                new = {"name": p.name, "qty": p.qty}
            else:
                rid = first + n
                n += 1
                s.add(Part(id=rid, name="p%d" % rid, qty=0))
                new = {"name": "p%d" % rid, "qty": 0}
        rows[rid] = new
    except Exception as e:
        retries += 1
        if retries > 500: raise
        time.sleep(0.01)
    time.sleep(rnd.uniform(0.002, 0.02))
json.dump({"rows": rows, "retries": retries}, open(out, "w"))
