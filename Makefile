# zquant: `make` builds build/zquant and build/libzquant.a; `make check` runs
# every test; `make demo` quantizes the bundled model; `make bench` measures.
# SANITIZE=1 builds (into build/san) and tests under ASan + UBSan; SIMD=0
# builds (into build/scalar) without the vector kernels; MPI=1 builds (into
# build/mpi) a zquant whose lkd splits blocks over MPI ranks (OpenMPI via
# pkg-config; the default build has no MPI dependency).

VERSION := 0.1.0
PREFIX ?= /usr/local
PKGS := openblas hdf5 libcjson libzstd libpcre2-8 libutf8proc

ifeq ($(SANITIZE),1)
BUILD_DIR := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD_DIR := build
SANFLAGS :=
OPT := -O3
endif
# SIMD=0: the scalar kernels alone, the ones that define file contents.
SIMD ?= 1
ifeq ($(SIMD),0)
BUILD_DIR := $(BUILD_DIR)/scalar
endif
MPI ?= 0
ifeq ($(MPI),1)
BUILD_DIR := $(BUILD_DIR)/mpi
PKGS += ompi-c
endif
BUILD ?= $(BUILD_DIR)

# Evaluated when used, so a build that first installs the packages
# (deps-check) still finds them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# OpenBLAS is loaded at run time (base/blas.c says why): headers, no -l.
PKG_LIBS = $(shell pkg-config --libs $(filter-out openblas,$(PKGS)) 2>/dev/null) -ldl
OPENBLAS_PATH = $(shell pkg-config --variable=libdir openblas 2>/dev/null)libopenblas.so.0

CC ?= cc
# -ffp-contract=off: no fused multiply-add behind our back, so every build
# computes the same bits as the scalar reference.
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -ffp-contract=off -pthread \
              -Iinclude $(PKG_CFLAGS) $(SANFLAGS) -DZQ_VERSION='"$(VERSION)"' -DZQ_SIMD=$(SIMD) \
              -DZQ_OPENBLAS_PATH='"$(OPENBLAS_PATH)"' -DZQ_MPI=$(MPI)
LDLIBS = $(PKG_LIBS) -lm -pthread $(SANFLAGS)

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c src/*/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/unit/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
DEPS := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

.PHONY: all check bench demo install clean deps deps-check fuzz

all: $(BUILD)/zquant $(BUILD)/libzquant.a

deps:
	scripts/deps.sh

# `make demo` is the README's first command on a fresh machine: every build
# installs the Debian packages first if pkg-config cannot find them.
deps-check:
	@pkg-config --exists $(PKGS) || scripts/deps.sh

# The library and the tests see src/; the CLI sees only include/zquant, the
# public API, so the boundary holds by construction.
$(BUILD)/%.o: %.c | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -MMD -MP -c $< -o $@

$(BUILD)/src/cli/%.o: src/cli/%.c | deps-check
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# libzquant.a exports the public API alone: its objects are linked into one
# whose global symbols are only the zq_ names include/zquant declares
# (everything else becomes local), so a program that links it with ggml,
# say, meets no clash, and the CLI, linked against it, proves it needs
# nothing else. The tests and tools link the objects themselves
# (internal.a): they test the insides.
$(BUILD)/public.syms: $(wildcard include/zquant/*.h)
	@mkdir -p $(dir $@)
	grep -ohw 'zq_[A-Za-z0-9_]*' $^ | sort -u > $@

$(BUILD)/libzquant.a: $(LIB_OBJ) $(BUILD)/public.syms
	@rm -f $@ $(BUILD)/libzquant.o
	$(LD) -r -o $(BUILD)/libzquant.o $(LIB_OBJ)
	objcopy --keep-global-symbols=$(BUILD)/public.syms $(BUILD)/libzquant.o
	ar rcs $@ $(BUILD)/libzquant.o

$(BUILD)/internal.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/zquant: $(CLI_OBJ) $(BUILD)/libzquant.a
	$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libzquant.a $(LDLIBS)

$(BUILD)/unit_tests: $(TEST_OBJ) $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/internal.a $(LDLIBS)

# The MPI build for tests/mpi.sh, where OpenMPI is installed (deps.sh does).
ifneq ($(MPI),1)
MPI_BUILD := $(BUILD)/mpi
check: mpi-build
mpi-build: | deps-check
	@if pkg-config --exists ompi-c; then $(MAKE) --no-print-directory MPI=1 BUILD=$(MPI_BUILD) $(MPI_BUILD)/zquant; fi
.PHONY: mpi-build
endif

check: $(BUILD)/zquant $(BUILD)/libzquant.a $(BUILD)/unit_tests $(BUILD)/st_compare $(BUILD)/zq_cmp $(BUILD)/lp_compare $(BUILD)/block_compare $(BUILD)/fault.so
	ZQ_BUILD=$(BUILD) ZQ_MPI_BUILD=$(MPI_BUILD) ZQ_FUZZ_BUILD=$(FUZZ_BUILD) tests/run.sh

demo: $(BUILD)/zquant
	scripts/demo.sh $(BUILD)/zquant

bench: $(BUILD)/zquant $(BUILD)/bench_gptq $(BUILD)/bench_int8
	scripts/bench.sh $(BUILD)/zquant

install: $(BUILD)/zquant $(BUILD)/libzquant.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/zquant \
	           $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(BUILD)/zquant $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libzquant.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/zquant/*.h $(DESTDIR)$(PREFIX)/include/zquant/
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/

clean:
	rm -rf build

-include $(DEPS)

$(BUILD)/st_compare: $(BUILD)/tests/tools/st_compare.o $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/internal.a $(LDLIBS)

$(BUILD)/zq_cmp: $(BUILD)/tests/tools/zq_cmp.o $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/internal.a $(LDLIBS)

$(BUILD)/lp_compare: $(BUILD)/tests/tools/lp_compare.o
	$(CC) $(ALL_CFLAGS) -o $@ $< -lm

$(BUILD)/block_compare: $(BUILD)/tests/tools/block_compare.o $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/internal.a $(LDLIBS)

$(BUILD)/bench_gptq: $(BUILD)/tests/tools/bench_gptq.o $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/internal.a $(LDLIBS)

$(BUILD)/bench_int8: $(BUILD)/tests/tools/bench_int8.o $(BUILD)/internal.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/internal.a $(LDLIBS)

# preloaded by tests that kill a run at an exact point: no sanitizer inside
$(BUILD)/fault.so: tests/tools/fault.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -shared -fPIC -o $@ $< -ldl

# ---- fuzzing: one harness per parser (tests/fuzz/fuzz_*.c) ------------------
# Built with clang, ASan and UBSan, the library instrumented for libFuzzer.
# make check replays every committed corpus input through them (which also
# proves clang builds zquant); make fuzz mutates, FUZZ_SECONDS per harness.
FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -ffp-contract=off -pthread -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link \
              -Iinclude -Isrc $(PKG_CFLAGS) -DZQ_VERSION='"$(VERSION)"' -DZQ_SIMD=1 \
              -DZQ_OPENBLAS_PATH='"$(OPENBLAS_PATH)"'
FUZZ_LIBS = $(PKG_LIBS) -lm -pthread -fsanitize=address,undefined
HARNESSES := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAYS := $(HARNESSES:%=$(FUZZ_BUILD)/replay_%)

# here, not on the check rule above: a prerequisite list is expanded where
# it is read, and REPLAYS is only defined from this point on
check: $(REPLAYS)
# keep the harness objects: make would delete them after check as intermediates,
# and its 'rm' line would follow the test runner's closing line
.SECONDARY: $(HARNESSES:%=$(FUZZ_BUILD)/tests/fuzz/%.o) $(FUZZ_BUILD)/tests/fuzz/replay.o

$(FUZZ_BUILD)/%.o: %.c | deps-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libzquant.a: $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/replay_%: $(FUZZ_BUILD)/tests/fuzz/%.o $(FUZZ_BUILD)/tests/fuzz/replay.o $(FUZZ_BUILD)/libzquant.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_BUILD)/%: $(FUZZ_BUILD)/tests/fuzz/%.o $(FUZZ_BUILD)/libzquant.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

fuzz: $(HARNESSES:%=$(FUZZ_BUILD)/%)
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BUILD)

-include $(wildcard $(FUZZ_BUILD)/src/*/*.d $(FUZZ_BUILD)/src/*/*/*.d $(FUZZ_BUILD)/tests/fuzz/*.d)
