# The three commands of DESIGN.md §1. One build directory, reused; ccache underneath.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= 2
# ccache keys on paths relative to the checkout, so a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR := $(CURDIR)
CONFIG ?= configs/quickstart.json
FUZZ_SECONDS ?= 60

.PHONY: all setup build run test test-fast bench fuzz format clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: setup $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/bin/ottava --config $(CONFIG)

# Every label: unit, integration, e2e (and redis/kafka as they arrive).
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 300

# Only the fast unit tests.
test-fast: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -L unit

bench: build
	bash test/bench/run.sh $(BUILD_DIR)

# The HTTP/1.1, Bolt and Dubbo codec fuzzers (libFuzzer, ASan, UBSan): built with clang from
# the few sources each needs into $(BUILD_DIR)/fuzz, then run. `make test` runs each for 5 s (ctest label `fuzz`).
fuzz: setup
	bash scripts/fuzz.sh --target http1 --seconds $(FUZZ_SECONDS) --out $(BUILD_DIR)/fuzz
	bash scripts/fuzz.sh --target bolt --seconds $(FUZZ_SECONDS) --out $(BUILD_DIR)/fuzz
	bash scripts/fuzz.sh --target dubbo --seconds $(FUZZ_SECONDS) --out $(BUILD_DIR)/fuzz

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
