#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, then the end-to-end suites that drive the
# real binary with the official TypeScript and Python SDKs. Installs the pinned SDK packages
# on first use (sdk-tests/js/package-lock.json, sdk-tests/py/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d sdk-tests/js/node_modules ]; then
  (cd sdk-tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -x sdk-tests/py/.venv/bin/python ]; then
  python3 -m venv sdk-tests/py/.venv
  sdk-tests/py/.venv/bin/pip install --quiet --disable-pip-version-check -r sdk-tests/py/requirements.txt
fi

cargo build --bins
cargo test --all-targets

export QSTASH_BIN="$PWD/target/debug/qstash"
(cd sdk-tests/js && node --test --test-concurrency=1 --test-timeout=120000 tests/)
(cd sdk-tests/py && .venv/bin/python -m pytest -q -p no:cacheprovider tests/)
