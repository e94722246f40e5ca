# Cairn - a durable workflow engine for operations work.
#
#   make          build ./cairn (and the tools: build/tools/bench)
#   make test     install dependencies, build, run every test (one summary line)
#   make demo     run a real workflow, kill the engine midway, resume it
#   make asan     unit tests under AddressSanitizer and UBSan
#   make tsan     unit tests and the threaded integration suites under ThreadSanitizer
#   make bench    benchmarks (see bench/README.md)
#   make fuzz     libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (default 60)

CC      ?= cc
PKGS    := yaml-0.1 sqlite3 libcurl libssh2 libpcre2-8 libmicrohttpd libcrypto libpq
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP -I. \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
override LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ljq -lm -pthread

BUILD   ?= build
# Quiet by default; `make V=1` shows each command.
Q       := $(if $(V),,@)
LIBSRC  := $(wildcard common/*.c dsl/*.c engine/*.c actions/*.c server/*.c)
CLISRC  := $(wildcard cli/*.c)
UNITSRC := $(wildcard tests/unit/*.c)
TOOLSRC := $(wildcard tests/tools/*.c)
LIBOBJ  := $(LIBSRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/schema_sql.o $(BUILD)/gen/console_assets.o \
           $(BUILD)/gen/schema_pg_sql.o
CLIOBJ  := $(CLISRC:%.c=$(BUILD)/%.o)
UNITOBJ := $(UNITSRC:%.c=$(BUILD)/%.o)
TOOLS   := $(TOOLSRC:tests/tools/%.c=$(BUILD)/tools/%)
FUZZSRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ    := $(FUZZSRC:tests/fuzz/%.c=build-fuzz/fuzz/%)
# Loaded into cairn by tests/integration/powerloss.py to trace the journal's I/O.
SHIM    := $(BUILD)/tools/powerloss.so

all: cairn $(TOOLS)

cairn: $(BUILD)/cairn
	@cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/libcairn.a: $(LIBOBJ)
	@mkdir -p $(@D)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/cairn: $(CLIOBJ) $(BUILD)/libcairn.a
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/unit: $(UNITOBJ) $(BUILD)/libcairn.a
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libcairn.a
	@mkdir -p $(@D)
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

build-fuzz/fuzz/%: tests/fuzz/%.c build-fuzz/libcairn.a
	@mkdir -p $(@D)
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(SHIM): tests/shim/powerloss.c
	@mkdir -p $(@D)
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# The journal schema is compiled in from schema/journal.sql.
$(BUILD)/gen/schema_sql.c: schema/journal.sql
	@mkdir -p $(@D)
	@{ echo 'const char cairn_schema_sql[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	   echo ';'; } > $@

$(BUILD)/gen/schema_sql.o: $(BUILD)/gen/schema_sql.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# The web console (server/console.h) is compiled in from server/console/:
# each file a C string ('?' escaped against trigraphs), its ETag the first
# 16 hex digits of its SHA-256.  Made on every make (a file removed is no
# longer served) but replaced only when it differs, so nothing else rebuilds.
CONSOLE := $(sort $(wildcard server/console/*.html server/console/*.js server/console/*.css \
                           server/console/*.svg))

$(BUILD)/gen/console_assets.c: FORCE
	@mkdir -p $(@D)
	@{ echo '#include "server/console.h"'; \
	   echo 'const srv_console_asset srv_console_assets[] = {'; \
	   for f in $(CONSOLE); do \
	       printf '{"/%s", "\\"%s\\"",\n' "$${f##*/}" "$$(sha256sum $$f | cut -c1-16)"; \
	       sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
	       echo '},'; \
	   done; \
	   echo '{0, 0, 0}};'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/gen/console_assets.o: $(BUILD)/gen/console_assets.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# And the PostgreSQL journal's from schema/journal_pg.sql.
$(BUILD)/gen/schema_pg_sql.c: schema/journal_pg.sql
	@mkdir -p $(@D)
	@{ echo 'const char cairn_schema_pg_sql[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	   echo ';'; } > $@

$(BUILD)/gen/schema_pg_sql.o: $(BUILD)/gen/schema_pg_sql.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

deps:
	@sh scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory cairn $(BUILD)/unit $(TOOLS) $(SHIM)
	@sh tests/run.sh

unit: $(BUILD)/unit
	$(BUILD)/unit

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build-asan/unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/unit

# gcc's ThreadSanitizer: the unit tests and the integration suites whose
# cairn runs threads (scripts/tsan.sh); not part of `make test`.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CC=gcc \
	    CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=thread" build-tsan/unit build-tsan/cairn
	@BUILD=build-tsan sh scripts/tsan.sh

# clang's libFuzzer, with ASan and UBSan; not part of `make test`.
fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=fuzzer,address,undefined" $(FUZZ)
	@FUZZ_BUILD=build-fuzz sh tests/fuzz/run.sh

demo: deps cairn
	@sh scripts/demo.sh

bench: deps cairn $(TOOLS)
	@sh bench/run.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz cairn

.PHONY: all deps test unit asan tsan fuzz demo bench clean FORCE

-include $(LIBOBJ:.o=.d) $(CLIOBJ:.o=.d) $(UNITOBJ:.o=.d) $(TOOLS:=.d)
