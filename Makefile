# Makefile -- short entry points over meson/ninja and the project's scripts.
#
#   make build   release build in build/ (installs missing Debian build packages first)
#   make demo    build, then scripts/demo.sh: init, backup, restore, compare
#   make test    clang ASan+UBSan build in build-asan/ (with the libFuzzer targets), then
#                tests/run.sh (unit, integration, fuzz corpus replay); what CI runs (.ci/run)
#   make tsan    clang ThreadSanitizer build in build-tsan/, then the threaded tests
#   make fuzz    clang libFuzzer build in build-fuzz/, then fuzz each target for FUZZ_SECONDS
#                (FUZZ_TARGET=name for one); new inputs go to build-fuzz/corpus/, crashes to
#                build-fuzz/crashes/
#   make bench   release build, then bench/run.sh build
#   make clean   remove the build directories this Makefile creates and demo-work/
#
# meson is the build system; this file only sequences it. A build directory is configured
# once (delete it to reconfigure); ninja re-runs meson by itself when a meson.build changes.

SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?=

.PHONY: all build demo test tsan fuzz bench clean

all: build

build:
	scripts/install-deps.sh build
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) --buildtype=release
	ninja -C $(BUILD)

demo: build
	scripts/demo.sh $(BUILD)

test:
	scripts/install-deps.sh test
	@test -f $(ASAN_BUILD)/build.ninja || CC=clang meson setup $(ASAN_BUILD) \
		--buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
		-Dfuzz=true
	ninja -C $(ASAN_BUILD)
	tests/run.sh $(ASAN_BUILD)

fuzz:
	scripts/install-deps.sh test
	@test -f $(FUZZ_BUILD)/build.ninja || CC=clang meson setup $(FUZZ_BUILD) \
		--buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ_BUILD)
	@set -e; mkdir -p $(FUZZ_BUILD)/crashes; found=0; \
	for bin in $(FUZZ_BUILD)/tests/fuzz/*; do \
		[ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
		t=$$(basename "$$bin"); \
		[ -z "$(FUZZ_TARGET)" ] || [ "$$t" = "$(FUZZ_TARGET)" ] || continue; \
		found=1; seeds=tests/fuzz/corpus/$$t; \
		[ -d "$$seeds" ] || seeds=tests/fuzz/corpus/$${t#fuzz_}; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
		"$$bin" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- \
			$(FUZZ_BUILD)/corpus/$$t $$( [ -d "$$seeds" ] && echo "$$seeds" ); \
	done; \
	[ $$found = 1 ] || { echo "no fuzz targets in $(FUZZ_BUILD)/tests/fuzz"; exit 1; }

bench: build
	scripts/install-deps.sh bench
	@test -x bench/run.sh || { echo "bench/run.sh is missing"; exit 1; }
	bench/run.sh $(BUILD)

# ThreadSanitizer over the threaded paths (the pipeline, restore, prune beside backups): not
# in `make test` (it would double its time), run it after touching threads.
tsan:
	scripts/install-deps.sh test
	@test -f $(TSAN_BUILD)/build.ninja || CC=clang meson setup $(TSAN_BUILD) \
		--buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false
	ninja -C $(TSAN_BUILD)
	TSAN_OPTIONS=halt_on_error=1 TEST_FILTER='roundtrip|concurrency|crash|inspect|writer|prune' \
		tests/run.sh $(TSAN_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) demo-work
