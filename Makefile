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
PKG_LIBS = $(shell pkg-config --libs $(PKGS))
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE $(WARNINGS) $(PKG_CFLAGS) \
	-DREGPRUNE_VERSION='"$(VERSION)"' -Isrc -MMD -MP $(CFLAGS)

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

.PHONY: all test unit-test cli-test policy-test integration-test demo deps \
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

# The whole suite: unit tests, command-line and policy cases, and the
# end-to-end test against a real docker-registry server and skopeo.
test: deps
	$(MAKE) all
	$(MAKE) unit-test cli-test policy-test integration-test

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

valgrind: all
	$(TEST_ENV) REGPRUNE_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite" tests/cli/run.sh

bench: all
	bench/seed.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/regprune/policies
	install -m 755 regprune $(DESTDIR)$(PREFIX)/bin/regprune
	install -m 644 policies/*.lua $(DESTDIR)$(PREFIX)/share/regprune/policies/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/regprune
	rm -rf $(DESTDIR)$(PREFIX)/share/regprune

clean:
	rm -rf build build-asan build-ubsan regprune

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/*.d)
