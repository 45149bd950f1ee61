# spotter — common tasks. `make help` lists them.
CARGO ?= cargo
OUT ?= out/demo

.PHONY: help build test demo fmt clippy ci goldens cross deb deploy check-unit check-deploy boards test-arm test-armv7 bench-run bench-peers

# Deployment (docs/deploy.md). BOARD names boards/BOARD/board.toml.
BOARD ?= x86_64
HOST ?=
BOARD_FILE := boards/$(BOARD)/board.toml
board_var = $(shell python3 scripts/board-var.py $(BOARD_FILE) $(1))
TARGET = $(call board_var,build.target)
GLIBC = $(call board_var,build.glibc)
DEB_ARCH = $(call board_var,build.deb_arch)
BOARD_CPU = $(call board_var,build.cpu)
# TARGET_CPU=1 compiles for the board's core (-C target-cpu): faster, but that binary dies with
# SIGILL on an older core before any check can run. Default off: kernels pick tiers at run time.
TARGET_CPU ?=
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
CROSS_BIN = $(TARGET_DIR)/$(TARGET)/release/spotter
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB_DIR = out/deb/$(BOARD)
DEB = out/spotter_$(VERSION)_$(BOARD)_$(DEB_ARCH).deb
# Host builds for build/demo/soak and the .deb's config step: PROFILE=release (default) is the
# shipped binary. PROFILE=ci (what .ci/run passes) takes the binaries `make test` built (profile
# `ci` in Cargo.toml) through `cargo test --no-run`, a no-op after `make test`: a plain `cargo
# build` unifies other features (no dev-dependencies), which recompiled tract, the calibrator and
# spotter a second time in CI.
PROFILE ?= release
BIN_DIR = $(TARGET_DIR)/$(PROFILE)
ifeq ($(PROFILE),ci)
BUILD = $(CARGO) test --workspace --profile ci --no-run
BUILD_SPOTTER = $(BUILD)
else
BUILD = $(CARGO) build --profile $(PROFILE) --workspace
BUILD_SPOTTER = $(CARGO) build --profile $(PROFILE) --bin spotter
endif
# A spotter that runs here (merges the board's [config] into the package's spotter.toml).
HOST_SPOTTER ?= $(BIN_DIR)/spotter

help: ## this list
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## release build of spotter and spotter-calibrate (PROFILE=ci: the test build's)
	$(BUILD)

# Profile `ci` (Cargo.toml): release optimisation without LTO and debuginfo, so the test binaries
# link quickly; demo/soak/deb reuse this build in CI (PROFILE=ci).
test: ## all tests (what CI runs, see README)
	$(CARGO) test --workspace --profile ci

demo: build ## detect objects in models/samples with the default model; writes $(OUT)/*.jpg|png and $(OUT)/detections.jsonl
	@mkdir -p $(OUT)
	$(BIN_DIR)/spotter detect --json --out $(OUT) models/samples/* | tee $(OUT)/detections.jsonl
	@echo "annotated images and detections.jsonl in $(OUT)/"

# Python with scripts/requirements-bench.txt installed (e.g. a venv's bin/python).
BENCH_PYTHON ?= python3
BENCH_ARGS ?=

bench-peers: ## spotter vs LiteRT, ONNX Runtime and tract on the same models, one run (not CI; see scripts/bench_peers.py)
	$(CARGO) build --release --bin spotter
	$(BENCH_PYTHON) scripts/bench_peers.py --spotter $(TARGET_DIR)/release/spotter $(BENCH_ARGS)

fmt: ## check formatting
	$(CARGO) fmt --all -- --check

clippy: ## lints, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

ci: ## what .ci/run does
	bash .ci/run

boards: ## list the target boards (boards/*/board.toml)
	@for f in boards/*/board.toml; do \
	  printf '  %-12s %-32s glibc %-5s %s\n' "$$(basename $$(dirname $$f))" \
	    "$$(python3 scripts/board-var.py $$f build.target)" "$$(python3 scripts/board-var.py $$f build.glibc)" \
	    "$$(python3 scripts/board-var.py $$f description)"; done

cross: ## cross-compile for BOARD (default x86_64) with cargo-zigbuild at the board's glibc floor; checks the glibc symbols
	@test -f $(BOARD_FILE) || { echo "no board $(BOARD): see make boards" >&2; exit 2; }
	@command -v cargo-zigbuild >/dev/null || { echo "cargo-zigbuild missing: pip install ziglang cargo-zigbuild" >&2; exit 2; }
	rustup target add $(TARGET)
	SPOTTER_BOARD=$(BOARD) $(if $(TARGET_CPU),RUSTFLAGS="-C target-cpu=$(BOARD_CPU)") \
	  $(CARGO) zigbuild --release --target $(TARGET).$(GLIBC) --bin spotter
	scripts/check-glibc.sh $(CROSS_BIN) $(GLIBC)
	@echo "built $(CROSS_BIN) for $(BOARD) ($(TARGET), glibc >= $(GLIBC))"

deb: cross ## Debian package for BOARD: binary, models, /etc/spotter/spotter.toml (conffile), systemd unit
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	$(BUILD_SPOTTER)
	$(HOST_SPOTTER) board config --board $(BOARD) --base deploy/spotter.toml > $(DEB_DIR).toml
	scripts/make-deb.sh $(DEB_DIR) $(CROSS_BIN) $(BOARD) $(VERSION) $(DEB_ARCH) $(DEB_DIR).toml $(DEB)

deploy: deb ## install the BOARD .deb on HOST=user@host (scp + ssh sudo dpkg -i) and show the service status
	@test -n "$(HOST)" || { echo "usage: make deploy BOARD=rpi4 HOST=pi@camera1.local" >&2; exit 2; }
	scp $(DEB) $(HOST):/tmp/
	ssh $(HOST) 'sudo dpkg -i /tmp/$(notdir $(DEB)) && sudo systemctl restart spotter && systemctl --no-pager status spotter | head -n 15 && spotter board check'

check-unit: ## systemd unit hardening: systemd-analyze security exposure <= 2.5
	scripts/check-unit.sh deploy/spotter.service 2.5

check-deploy: check-unit ## CI: unit check, rpi4 cross build + glibc check, .deb contents, board check under qemu
	$(MAKE) deb BOARD=rpi4
	scripts/check-deb.sh out/spotter_$(VERSION)_rpi4_arm64.deb
	@# The aarch64 build under user-mode emulation (apt: qemu-user libc6-arm64-cross) on a
	@# Cortex-A72 (a Pi 4): it must run, and warn that the rpi5 board's dotprod is missing.
	qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu $(TARGET_DIR)/aarch64-unknown-linux-gnu/release/spotter \
	  board check --board rpi5 | tee out/board-check-rpi5-on-a72.txt
	grep -q 'WARNING: board rpi5 expects CPU feature(s) dotprod' out/board-check-rpi5-on-a72.txt
	qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu $(TARGET_DIR)/aarch64-unknown-linux-gnu/release/spotter \
	  board check --board rpi5 | grep 'ok: CPU has every kernel tier board rpi5 expects' >/dev/null
	@# (grep reads to the end: with -q it would close the pipe early and spotter's print fail.)

THREADS ?= $(shell nproc)
FRAMES ?= 300
bench-run: build ## pipeline fps (spotter run, models/samples, FRAMES=300) vs spotter bench at THREADS; prints the ratio (issue #5: >= 0.9)
	scripts/bench-run.sh $(TARGET_DIR)/release/spotter $(THREADS) $(FRAMES) models/samples

goldens: ## regenerate LiteRT reference data (needs network for pip; not part of CI)
	python3 -m pip install -r scripts/requirements.txt
	python3 scripts/goldens/make_goldens.py

# aarch64 kernel tiers under qemu-user. Needs (installed by .ci/run, not here): Debian packages
# libc6-dev-arm64-cross qemu-user, `pip install ziglang cargo-zigbuild` and `rustup target add
# aarch64-unknown-linux-gnu`. Linker / CC: zig (cargo-zigbuild); v4l2 is left out
# (cameras are not under test). Each emulated CPU first reports (and checks) its tiers, then
# runs the kernel unit tests, the tier-equality proptests (every tier the CPU has vs scalar),
# the LiteRT single-op goldens on its best tier and the whole-model tier test.
ARM_TARGET := aarch64-unknown-linux-gnu
ARM_SYSROOT ?= /usr/aarch64-linux-gnu
# Built with cargo-zigbuild like `make cross BOARD=rpi4`, so both share the compiled
# dependencies in one target directory (a plain `cargo test --target` build uses another C
# compiler, which rebuilds everything: ~9 min more in CI). qemu still needs the Debian
# aarch64 libc (libc6-arm64-cross) to run the binaries.
ARM_GLIBC ?= 2.31
ARM_TEST = cargo-zigbuild test --target $(ARM_TARGET).$(ARM_GLIBC) --release --no-default-features
ARM_CPUS ?= cortex-a72:scalar,neon cortex-a76:scalar,neon,dotprod

test-arm: ## cross-build for aarch64, run kernel + tier tests under qemu (cortex-a72: neon, cortex-a76: dotprod)
	$(ARM_TEST) --no-run --lib --test coral_tiers
	@set -e; for spec in $(ARM_CPUS); do \
	  cpu=$${spec%%:*}; tiers=$${spec#*:}; \
	  echo "== qemu-aarch64 -cpu $$cpu (expect tiers $$tiers)"; \
	  start=$$(date +%s); \
	  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu $$cpu -L $(ARM_SYSROOT)"; \
	  SPOTTER_EXPECT_TIERS=$$tiers $(ARM_TEST) --lib report_tiers -- --nocapture; \
	  $(ARM_TEST) --lib -- kernels:: ops::simd_tests matches_litert; \
	  $(ARM_TEST) --test coral_tiers; \
	  echo "== -cpu $$cpu: $$(( $$(date +%s) - start ))s"; \
	done

# armv7 (rpi-zero2, 32-bit Raspberry Pi OS) under qemu-arm. Needs (installed by .ci/run):
# libc6-armhf-cross qemu-user, cargo-zigbuild, `rustup target add armv7-unknown-linux-gnueabihf`.
# 32-bit ARM has no kernel tier (scalar only), so the check is the whole binary on a 32-bit
# target (word size: MAX_ARENA_BYTES once wrapped to 0 there and refused every model): its
# detections, as JSON, must equal the host scalar tier's byte for byte.
ARMV7_BIN = $(TARGET_DIR)/armv7-unknown-linux-gnueabihf/release/spotter
ARMV7_IMAGES ?= astronaut.png chelsea.png
test-armv7: ## cross-build for armv7 (rpi-zero2); its detections under qemu-arm must equal the host scalar tier's
	$(MAKE) cross BOARD=rpi-zero2
	$(BUILD_SPOTTER)
	@mkdir -p out
	@set -e; for img in $(ARMV7_IMAGES); do \
	  SPOTTER_ISA=scalar $(HOST_SPOTTER) detect models/samples/$$img --json > out/armv7-host.json; \
	  qemu-arm -cpu cortex-a15 -L /usr/arm-linux-gnueabihf $(ARMV7_BIN) detect models/samples/$$img \
	    --json > out/armv7-qemu.json; \
	  cmp out/armv7-host.json out/armv7-qemu.json; \
	  echo "armv7 under qemu-arm = host scalar: $$img ($$(grep -c . out/armv7-qemu.json) line(s))"; \
	done

# Reliability (issue 7; README "Reliability"). cargo-fuzz needs nightly:
#   rustup toolchain install nightly && cargo install cargo-fuzz
FUZZ_TARGETS := tflite_loader onnx_loader labels config_toml image_decode mjpeg_stream serial_decoder mqtt_payload
FUZZ_SECONDS ?= 300
FUZZ_CI_SECONDS ?= 25
SOAK_SECONDS ?= 60
# The default model (6 MB) is the tflite seed: without this libFuzzer would cut inputs to 1 MB
# and never reach the tables at the end of the file. A run then costs ~1-3 s under ASan.
FUZZ_TFLITE_MAX_LEN := 7000000

.PHONY: fuzz fuzz-ci fuzz-build soak
fuzz-build:
	scripts/fuzz-seeds.sh
	$(CARGO) +nightly fuzz build

# Each target for FUZZ_SECONDS (CI: FUZZ_CI_SECONDS) from fuzz/corpus/T (kept, grows) plus the
# seeds; a crash stops with the input in fuzz/artifacts/T/ (reproduce: cargo +nightly fuzz run T FILE).
fuzz: fuzz-build ## run every fuzz target for FUZZ_SECONDS (default 300) each
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; mkdir -p fuzz/corpus/$$t; \
	  extra=; case $$t in tflite_loader|onnx_loader) extra=-max_len=$(FUZZ_TFLITE_MAX_LEN);; esac; \
	  $(CARGO) +nightly fuzz run $$t $(CURDIR)/fuzz/corpus/$$t $(CURDIR)/fuzz/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 $$extra; \
	done

fuzz-ci: ## every fuzz target briefly (FUZZ_CI_SECONDS, default 25 s each): what CI runs
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

soak: ## run the pipeline SOAK_SECONDS (default 60) and check RSS / fds stay flat
	$(BUILD_SPOTTER)
	SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh $(BIN_DIR)/spotter
