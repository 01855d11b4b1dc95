# Two commands on a fresh Debian machine:
#   make demo   runs riverwatch on the bundled sample tiles
#   make test   runs the test suite
# Both install what is missing first (GDAL from Debian's libgdal-dev).

CARGO ?= cargo
BIN := target/release/riverwatch
OUT ?= out

# Python environment of the engine tests (Spark local mode and a Dask
# LocalCluster), versions pinned.
SCALE_ENV := target/scale-venv
SCALE_PY := $(SCALE_ENV)/bin/python
SCALE_PKGS := pyspark==4.3.0 dask[distributed]==2026.8.0

.PHONY: demo test deps bench scale-deps

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
	$(MAKE) --no-print-directory scale-deps
	$(CARGO) build --release --quiet
	SPARK_LOCAL_IP=127.0.0.1 $(SCALE_PY) -m unittest discover -s tests/scale -v

# Java 17 (Spark 4 needs 17 or newer) and a virtualenv with pyspark and dask.
scale-deps:
	@java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || { echo "installing openjdk-17-jre-headless (Spark runs on Java 17)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@test -x $(SCALE_PY) || python3 -m venv $(SCALE_ENV) 2>/dev/null || { echo "installing python3-venv"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && python3 -m venv $(SCALE_ENV); }
	@$(SCALE_PY) -c 'import pyspark, distributed' 2>/dev/null || { echo "installing $(SCALE_PKGS) into $(SCALE_ENV)"; $(SCALE_PY) -m pip install -q --disable-pip-version-check $(SCALE_PKGS); }

bench: deps
	$(CARGO) bench
