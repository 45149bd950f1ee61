# spotter — common tasks. `make help` lists them.
CARGO ?= cargo
OUT ?= out/demo

.PHONY: help build test demo fmt clippy ci goldens

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
