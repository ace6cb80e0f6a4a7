# regprune: `make` builds ./regprune and build/mkregistry; `make test` runs
# every test; `make demo` prunes a generated sample registry as a dry run.
# tools/demo and tools/test do the same on a machine without make or the
# libraries yet.

CC ?= cc
CFLAGS ?= -O2 -g
BUILD ?= build
PREFIX ?= /usr/local

PKGS := lua5.4 jansson libpcre2-8 yaml-0.1
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wwrite-strings -Wpointer-arith \
	-Wvla -fno-common
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -pthread
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -pthread $(WARNINGS) $(PKG_CFLAGS) \
	-DREGPRUNE_VERSION='"$(VERSION)"' \
	-DREGPRUNE_DATADIR='"$(PREFIX)/share/regprune"' -Isrc -MMD -MP $(CFLAGS)

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)

# The default build leaves the program at ./regprune; other builds (the
# sanitizer ones) keep theirs in their own folder.
ifeq ($(BUILD),build)
BIN := regprune
else
BIN := $(BUILD)/regprune
endif
TEST_ENV = REGPRUNE=$(abspath $(BIN)) MKREGISTRY=$(abspath $(BUILD)/mkregistry)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all test unit-test cli-test policy-test integration-test deploy-test \
	limits-test demo deps \
	asan ubsan valgrind bench clean check-deps

all: check-deps $(BIN) $(BUILD)/mkregistry

check-deps:
	@pkg-config --exists $(PKGS) || { echo "missing libraries: run" \
	  "tools/install-deps build (Debian: liblua5.4-dev libjansson-dev libyaml-dev" \
	  "libpcre2-dev pkg-config)" >&2; exit 1; }

$(BIN): $(BUILD)/obj/main.o $(BUILD)/libregprune.a
	@echo "  LINK $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/libregprune.a: $(LIB_OBJS)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	@echo "  CC   $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/mkregistry: tools/mkregistry.c $(BUILD)/libregprune.a | $(BUILD)
	@echo "  CC   $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libregprune.a \
	  $(PKG_LIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(BUILD)/libregprune.a | $(BUILD)
	@echo "  CC   $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libregprune.a \
	  $(PKG_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD) $(BUILD)/obj:
	$(Q)mkdir -p $@

# The whole suite: unit tests, command-line and policy cases, the
# end-to-end test against a real docker-registry server and skopeo, and a
# repository with 200,000 tags.
test: deps
	$(MAKE) all
	$(MAKE) unit-test cli-test policy-test integration-test docs-test \
	  deploy-test limits-test

deps:
	tools/install-deps test

# Every binary runs even when an earlier one fails; the status says if any
# did. The plan and policy tests build trees with mkregistry.
unit-test: $(UNIT_BINS) $(BUILD)/mkregistry
	@rc=0; for t in $(UNIT_BINS); do echo "== $$t"; \
	  MKREGISTRY=$(abspath $(BUILD)/mkregistry) $$t || rc=1; done; exit $$rc

cli-test: all
	$(TEST_ENV) tests/cli/run.sh

policy-test: all
	$(TEST_ENV) tests/policies/run.sh

integration-test: all
	$(TEST_ENV) tests/integration/e2e.sh

# The deployment examples in examples/deploy/: regprune-maintenance end to
# end against docker-registry, systemd-analyze verify on the units, and the
# YAML of the Compose and Kubernetes files (python3-yaml).
deploy-test: all
	$(TEST_ENV) tests/deploy/run.sh

# One repository with 200,000 tags: exact plans for two policies, a real
# prune and a peak RSS bound (/usr/bin/time, python3). The tree needs about
# 2 GiB in /dev/shm, or 6 GiB on a disk file system; see the script.
limits-test: all
	$(TEST_ENV) tests/limits/run.sh

demo:
	tools/demo

# Sanitizer builds use their own folders and run the fast suites.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" all unit-test cli-test \
	  policy-test

ubsan:
	$(MAKE) BUILD=build-ubsan CFLAGS="-O1 -g -fsanitize=undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=undefined" all unit-test cli-test policy-test

# memcheck on every regprune run of the command-line and end-to-end tests.
# A run with a memory error or a definite leak exits 99, which fails its
# test. valgrind writes to $(VALGRIND_LOGS)/PID.log, not to stderr, which
# tests compare: valgrind 3.19 warns there that it does not know openat2
# (regprune then takes its path for kernels before 5.6). Logs with more
# than that warning are printed, and an error in any log fails the target.
VALGRIND_LOGS = $(abspath $(BUILD))/valgrind
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--log-file=$(VALGRIND_LOGS)/%p.log

valgrind: all
	@rm -rf $(VALGRIND_LOGS) && mkdir -p $(VALGRIND_LOGS)
	@rc=0; for t in tests/cli/run.sh tests/integration/e2e.sh; do \
	  echo "== $$t under valgrind"; \
	  $(TEST_ENV) REGPRUNE_WRAPPER="$(VALGRIND)" $$t || rc=1; \
	done; \
	for log in $(VALGRIND_LOGS)/*.log; do \
	  if grep -vq -e 'unhandled amd64-linux syscall: 437' \
	    -e 'write your own handler' -e 'README_MISSING_SYSCALL_OR_IOCTL' \
	    -e 'consider this a bug' -e 'valgrind.org/support/bug_reports' \
	    "$$log"; then echo "== $$log"; cat "$$log"; fi; \
	  if grep -q '^==[0-9]*==' "$$log"; then rc=1; fi; \
	done; exit $$rc

bench: all
	bench/seed.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/regprune/policies
	install -m 755 regprune $(DESTDIR)$(PREFIX)/bin/regprune
	install -m 644 policies/*.lua $(DESTDIR)$(PREFIX)/share/regprune/policies/
	install -D -m 755 examples/deploy/regprune-maintenance \
	  $(DESTDIR)$(PREFIX)/sbin/regprune-maintenance

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/regprune
	rm -rf $(DESTDIR)$(PREFIX)/share/regprune

clean:
	rm -rf build build-asan build-ubsan build-fuzz regprune

# Fuzzing with clang and libFuzzer (Debian: clang libclang-rt-14-dev).
# `make fuzz` builds each fuzz/fuzz_*.c into build-fuzz/ and runs it for
# FUZZ_TIME seconds from its seeds in fuzz/corpus/; new inputs are kept in
# build-fuzz/corpus/ and crash inputs in build-fuzz/. `make fuzz-regress`
# runs every seed and fuzz/regressions/ input once, which takes seconds.

FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_SAN := -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
FUZZ_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)

.PHONY: fuzz fuzz-build fuzz-regress lint

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t || exit 1; \
	  echo "== $$t for $(FUZZ_TIME) s"; \
	  dict=; test -f fuzz/$$t.dict && dict=-dict=fuzz/$$t.dict; \
	  $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$t- $$dict \
	    $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t || status=1; \
	done; exit $$status

fuzz-regress: $(FUZZ_BINS)
	@status=0; for t in $(FUZZ_TARGETS); do \
	  echo "== $$t"; \
	  $(FUZZ_BUILD)/$$t -runs=0 fuzz/corpus/$$t \
	    $$(test -d fuzz/regressions/$$t && echo fuzz/regressions/$$t) \
	    || status=1; \
	done; exit $$status

$(FUZZ_BUILD)/obj/%.o: src/%.c | $(FUZZ_BUILD)/obj
	@echo "  CC   $@"
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) \
	  -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_BUILD)/libregprune.a: $(FUZZ_OBJS)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/libregprune.a
	@echo "  LINK $@"
	$(Q)$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_SAN) \
	  -fsanitize=fuzzer,address,undefined -o $@ $< \
	  $(FUZZ_BUILD)/libregprune.a $(PKG_LIBS)

$(FUZZ_BUILD) $(FUZZ_BUILD)/obj:
	$(Q)mkdir -p $@

# Static analysis: cppcheck 2.10 and clang-tidy 14 (Debian: cppcheck
# clang-tidy), configured by .cppcheck-suppressions and .clang-tidy.

LINT_SRCS = $(wildcard src/*.c) $(wildcard fuzz/*.c)
# cppcheck reads jansson.h for json_object_foreach and json_array_foreach
# and skips the other system headers.
JANSSON_H = $(shell pkg-config --variable=includedir jansson)/jansson.h
LINT_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -Isrc -Ifuzz $(PKG_CFLAGS) \
	-DREGPRUNE_VERSION='"lint"'

lint:
	@status=0; \
	echo "  CPPCHECK"; \
	cppcheck --quiet --std=c11 --error-exitcode=1 \
	  --enable=warning,style,performance,portability \
	  --library=posix,gnu,lua --include=$(JANSSON_H) \
	  --inline-suppr --suppressions-list=.cppcheck-suppressions \
	  -D_DEFAULT_SOURCE -D_GNU_SOURCE -DREGPRUNE_VERSION='"lint"' \
	  -Isrc -Ifuzz $(LINT_SRCS) || status=1; \
	echo "  CLANG-TIDY"; \
	clang-tidy --quiet $(LINT_SRCS) -- $(LINT_CFLAGS) || status=1; \
	exit $$status

-include $(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/*.d)

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/*.d)

# Documentation: the JSON Schemas, the manual pages and the bash completion,
# checked against the program. docs-test needs the Debian packages
# python3-jsonschema, man-db and groff-base.
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/regprune
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

.PHONY: docs-test install-docs uninstall-docs

# Every script runs even when an earlier one fails.
docs-test: all
	@rc=0; for t in validate completion manpages; do echo "== $$t"; \
	  $(TEST_ENV) tests/docs/$$t.sh || rc=1; done; exit $$rc

install: install-docs

install-docs:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 docs/regprune.1 $(DESTDIR)$(MANDIR)/man1/regprune.1
	install -m 644 docs/regprune-policy.5 \
	  $(DESTDIR)$(MANDIR)/man5/regprune-policy.5
	install -m 644 docs/safety.md docs/policy.md docs/*.schema.json \
	  $(DESTDIR)$(DOCDIR)/
	install -m 644 completion/regprune.bash \
	  $(DESTDIR)$(BASHCOMPDIR)/regprune

uninstall: uninstall-docs

uninstall-docs:
	rm -f $(DESTDIR)$(MANDIR)/man1/regprune.1 \
	  $(DESTDIR)$(MANDIR)/man5/regprune-policy.5 \
	  $(DESTDIR)$(BASHCOMPDIR)/regprune
	rm -rf $(DESTDIR)$(DOCDIR)
