# The two commands of the README: `make run` and `make test`.  Everything else
# is meson's and ninja's; this file only strings the steps together.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
ARGS       ?=
PYTHON     ?= /usr/bin/python3

.PHONY: all deps build run test unit unit-asan integration asan bench clean fuzz fuzz-deps

all: build

deps:
	@sh tools/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Db_ndebug=true -Dtests=enabled -Djemalloc=enabled

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dtests=enabled

# libFuzzer targets (clang; README "Security and hardening")
$(FUZZ_BUILD)/build.ninja:
	CC=clang-14 meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Dtests=disabled \
	    -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/obentchi-server $(ARGS)

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Every test, unit and integration; prints one closing summary line.
test: build asan
	@sh tests/run-all.sh $(BUILD) $(ASAN_BUILD)

unit: build
	meson test -C $(BUILD) --print-errorlogs

unit-asan: asan
	meson test -C $(ASAN_BUILD) --print-errorlogs

integration: build
	OBENTCHI_SERVER=$(CURDIR)/$(BUILD)/obentchi-server $(PYTHON) -m pytest -q tests

bench: build
	$(PYTHON) tools/bench --obentchi $(BUILD)/obentchi-server $(BENCH_ARGS)

# Every fuzz target for FUZZ_SECONDS (default 60) each; `make test` replays
# their corpora instead (suite 'fuzz' of the unit tests).
fuzz-deps:
	@sh tools/deps.sh --fuzz

fuzz: fuzz-deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	@sh protocol/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
