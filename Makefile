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
	$(BIN) batch sample-tiles/manifest.json -o $(OUT) --jobs 2
	$(BIN) eval --pred $(OUT)/tiles/*.geojson --truth sample-tiles/truth.geojson
	@echo "dispatch pages: $$(ls $(OUT)/dispatch/*/*.html)"

# Tests build with the release profile, like `make demo`, so a fresh machine
# compiles the dependency tree once for both commands.
test: deps
	$(CARGO) test --release --quiet
	$(CARGO) run --release --quiet --example arrays

bench: deps
	$(CARGO) bench
