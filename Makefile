# syncq — top-level build.
#
#   make            build all three parts
#   make install    install the PostgreSQL extension, syncq.so and syncqd
#   make check      every test (installs missing Debian packages as root)
#   make bench      the benchmarks, printing a table
#   make soak SECONDS=N  the randomized convergence checker for N seconds
#                   (libpq and HTTP; tests/integration/sync_converge_random.sh)
#   make demo       a throwaway cluster + SQLite file showing syncq at work
#   make deps       install the Debian packages of deps/debian-packages.txt
#   make dist       the PGXN zip, build/dist/syncq-VERSION.zip
#   make deb        the Debian packages, in build/deb/
#
# The version lives in pg_ext/syncq.control (default_version); META.json is
# checked against it by the tests.

PREFIX   ?= /usr/local
CC       ?= cc
PG_CONFIG ?= pg_config
VERSION  := $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)

WARN     := -std=c11 -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The SQLite extension: its own files and the zone engine in common/.
SQLITE_SRC := $(sort $(wildcard sqlite_ext/*.c)) common/tz.c
SQLITE_HDR := $(wildcard sqlite_ext/*.h common/*.h)

.PHONY: all pg sqlite asan replicator install deps check soak bench demo clean fuzz dist deb

all: pg sqlite replicator

pg:
	$(MAKE) -C pg_ext PG_CONFIG=$(PG_CONFIG)

sqlite: sqlite_ext/syncq.so

sqlite_ext/syncq.so: $(SQLITE_SRC) $(SQLITE_HDR)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) -fPIC -shared -DSYNCQ_SQLITE_EXTENSION -Icommon $(LDFLAGS) -o $@ $(SQLITE_SRC)

# The SQLite extension and syncqd again, under AddressSanitizer and UBSan,
# for tests/run.
asan: build/asan/syncq.so
	$(MAKE) -C replicator O=../build/asan/obj OUT=../build/asan/syncqd CFLAGS="-O1 -g" SANFLAGS="$(SAN)"

build/asan/syncq.so: $(SQLITE_SRC) $(SQLITE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -O1 -g $(SAN) -fPIC -shared -DSYNCQ_SQLITE_EXTENSION -Icommon -o $@ $(SQLITE_SRC)

replicator:
	@if [ -f replicator/Makefile ]; then $(MAKE) -C replicator; fi

# The libFuzzer target over the POST /api/sync/data decoder and the hub's
# value encoding (tests/fuzz/; fuzz_hub.c includes hub/apply.c, so the rest
# of hub/ is linked), with clang under ASan + UBSan;
# tests/integration/fuzz_proto.sh builds it into its own directory
# (FUZZ_DIR=...) and runs it for 60 s.
FUZZ_CC  ?= clang
FUZZ_DIR ?= build/fuzz
FUZZ_SRC := tests/fuzz/fuzz_proto.c tests/fuzz/fuzz_hub.c \
	$(wildcard replicator/link/proto*.c replicator/link/page.c replicator/model/*.c replicator/base/*.c) \
	$(filter-out replicator/hub/apply.c replicator/hub/link_pg.c,$(wildcard replicator/hub/*.c)) common/tz.c

fuzz: $(FUZZ_DIR)/fuzz_proto

$(FUZZ_DIR)/fuzz_proto: $(FUZZ_SRC) replicator/hub/apply.c $(wildcard replicator/*/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(WARN) -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Ireplicator -Icommon -I$(shell $(PG_CONFIG) --includedir) -o $@ $(FUZZ_SRC) -lpq -ljansson -lsqlite3

# The Debian packages postgresql-15-syncq and syncqd (debian/), built with
# dpkg-buildpackage in a copy of the tree at $(DEBDIR)/syncq-VERSION, so
# that the .deb files land in $(DEBDIR) (dpkg-buildpackage writes to the
# parent of the tree it builds). The copy holds the files git knows of, as
# they are in the work tree. debian/changelog must name VERSION.
DEBDIR   ?= build/deb

deb:
	@v=$$(dpkg-parsechangelog -l debian/changelog -S Version) && [ "$$v" = "$(VERSION)" ] || \
		{ echo "make deb: debian/changelog is at $$v, syncq.control at $(VERSION)" >&2; exit 1; }
	rm -rf $(DEBDIR)/syncq-$(VERSION)
	mkdir -p $(DEBDIR)/syncq-$(VERSION)
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(DEBDIR)/syncq-$(VERSION)
	cd $(DEBDIR)/syncq-$(VERSION) && dpkg-buildpackage -b -us -uc
	rm -rf $(DEBDIR)/syncq-$(VERSION)
	@ls $(DEBDIR)/*.deb

install: all
	$(MAKE) -C pg_ext PG_CONFIG=$(PG_CONFIG) install
	install -D -m 755 sqlite_ext/syncq.so $(DESTDIR)$(PREFIX)/lib/syncq/syncq.so
	@if [ -f replicator/syncqd ]; then install -D -m 755 replicator/syncqd $(DESTDIR)$(PREFIX)/bin/syncqd; fi

deps:
	@sh deps/install.sh

# The PGXN distribution that META.json describes: the committed tree of HEAD
# (git archive) under syncq-VERSION/, plus the install script
# sql/syncq--VERSION.sql built from HEAD's sql/src (not committed, and what
# META.json's "provides" names), so that PGXS's `make install` in pg_ext/
# needs nothing but the zip. Uncommitted changes are not in it.
DISTDIR  ?= build/dist
DISTNAME := syncq-$(VERSION)

dist:
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make dist: not a git checkout" >&2; exit 1; }
	rm -rf $(DISTDIR)/$(DISTNAME) $(DISTDIR)/$(DISTNAME).zip
	mkdir -p $(DISTDIR)/$(DISTNAME)
	git archive HEAD sql pg_ext | tar -x -C $(DISTDIR)/$(DISTNAME)
	$(MAKE) -C $(DISTDIR)/$(DISTNAME)/pg_ext PG_CONFIG=$(PG_CONFIG) ../sql/syncq--$(VERSION).sql
	git archive --format=zip --prefix=$(DISTNAME)/sql/ --add-file=$(DISTDIR)/$(DISTNAME)/sql/syncq--$(VERSION).sql \
		--prefix=$(DISTNAME)/ -o $(DISTDIR)/$(DISTNAME).zip HEAD
	rm -rf $(DISTDIR)/$(DISTNAME)
	@echo "$(DISTDIR)/$(DISTNAME).zip"

check: deps
	$(MAKE) all asan
	$(MAKE) install
	tests/run

SECONDS ?= 600
soak: deps
	$(MAKE) all asan
	$(MAKE) install
	SYNCQ_CONVERGE_SECONDS=$(SECONDS) tests/run sync_converge_random

bench: deps
	$(MAKE) all
	$(MAKE) install
	bench/run

demo: deps
	$(MAKE) all
	$(MAKE) install
	demo/run

clean:
	$(MAKE) -C pg_ext clean
	@if [ -f replicator/Makefile ]; then $(MAKE) -C replicator clean; fi
	rm -rf build sqlite_ext/syncq.so
