# spotter — common tasks. `make help` lists them.
CARGO ?= cargo
OUT ?= out/demo

.PHONY: help build test demo fmt clippy ci goldens test-arm

help: ## this list
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## release build of spotter and spotter-calibrate
	$(CARGO) build --release --workspace

test: ## all tests (what CI runs, see README)
	$(CARGO) test --workspace --release

demo: build ## detect objects in models/samples with the default model; writes $(OUT)/*.jpg|png and $(OUT)/detections.jsonl
	@mkdir -p $(OUT)
	./target/release/spotter detect --json --out $(OUT) models/samples/* | tee $(OUT)/detections.jsonl
	@echo "annotated images and detections.jsonl in $(OUT)/"

fmt: ## check formatting
	$(CARGO) fmt --all -- --check

clippy: ## lints, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

ci: ## what .ci/run does
	bash .ci/run

goldens: ## regenerate LiteRT reference data (needs network for pip; not part of CI)
	python3 -m pip install -r scripts/requirements.txt
	python3 scripts/goldens/make_goldens.py

# aarch64 kernel tiers under qemu-user. Needs (installed by .ci/run, not here): Debian packages
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, and `rustup target add
# aarch64-unknown-linux-gnu`. Linker / CC come from .cargo/config.toml; v4l2 is left out
# (cameras are not under test). Each emulated CPU first reports (and checks) its tiers, then
# runs the kernel unit tests, the tier-equality proptests (every tier the CPU has vs scalar),
# the LiteRT single-op goldens on its best tier and the whole-model tier test.
ARM_TARGET := aarch64-unknown-linux-gnu
ARM_SYSROOT ?= /usr/aarch64-linux-gnu
ARM_TEST = $(CARGO) test --target $(ARM_TARGET) --release --no-default-features
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
