# Two commands on a fresh Debian machine:
#   make demo   runs riverwatch on the bundled sample tiles
#   make test   runs the test suite
# Both install what is missing first (GDAL from Debian's libgdal-dev).

CARGO ?= cargo
BIN := target/release/riverwatch
OUT ?= out

.PHONY: demo test deps bench

deps:
	@if ! command -v gdal-config >/dev/null 2>&1 || ! command -v ogrinfo >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then \
		echo "installing libgdal-dev gdal-bin pkg-config"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgdal-dev gdal-bin pkg-config >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "cargo is required (https://rustup.rs)"; exit 1; }

demo: deps
	$(CARGO) build --release --quiet
	$(BIN) validate sample-tiles/manifest.json
	@rm -f $(OUT)/cases.db $(OUT)/cases.db-wal $(OUT)/cases.db-shm
	# Night 1: detect, open cases, dispatch packages by case.
	$(BIN) batch sample-tiles/manifest.json -o $(OUT) --jobs 2 --cases $(OUT)/cases.db --case-prefix HLJ
	$(BIN) eval --pred $(OUT)/tiles/*.geojson --truth sample-tiles/truth.geojson
	@echo "dispatch pages: $$(ls $(OUT)/dispatch/*/*.html)"
	# Teams report twelve cases rectified (some of them are not).
	$(BIN) cases --cases $(OUT)/cases.db list --ids | head -12 | xargs $(BIN) cases --cases $(OUT)/cases.db mark --status reported_rectified --by "county team" --date 2026-07-01
	# Night 2, five weeks later: persisting sites keep their ids, new ones open cases.
	$(BIN) batch sample-tiles/manifest-night2.json -o $(OUT)/night2 --jobs 2 --cases $(OUT)/cases.db
	# Re-check of the reported rectifications, scored against the generator's truth.
	$(BIN) recheck sample-tiles/manifest-night2.json --cases $(OUT)/cases.db -o $(OUT)/recheck --truth sample-tiles/rectification.geojson
	$(BIN) cases --cases $(OUT)/cases.db export -o $(OUT)/cases

# Tests build with the release profile, like `make demo`, so a fresh machine
# compiles the dependency tree once for both commands.
test: deps
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (the print test renders a dispatch page to PDF)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(CARGO) test --release --quiet
	$(CARGO) run --release --quiet --example arrays

bench: deps
	$(CARGO) bench
