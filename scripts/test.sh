#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, then the end-to-end suites that drive the
# real binary with the official TypeScript and Python SDKs (QStash and Workflow), and the web
# console in a headless Chromium. Installs the pinned packages (sdk-tests/js/package-lock.json,
# sdk-tests/console/package-lock.json, sdk-tests/py/requirements.txt) on first use and again
# whenever those lists change; Chromium comes from the system (Debian: apt-get install chromium;
# elsewhere set CHROMIUM_BIN). The workflows under .github/ are linted first (actionlint, pinned
# in .ci/requirements-lint.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

js_stamp=sdk-tests/js/node_modules/.installed-package-lock.json
if ! cmp -s sdk-tests/js/package-lock.json "$js_stamp"; then
  (cd sdk-tests/js && npm ci --no-audit --no-fund --loglevel=error)
  cp sdk-tests/js/package-lock.json "$js_stamp"
fi
console_stamp=sdk-tests/console/node_modules/.installed-package-lock.json
if ! cmp -s sdk-tests/console/package-lock.json "$console_stamp"; then
  (cd sdk-tests/console && npm ci --no-audit --no-fund --loglevel=error)
  cp sdk-tests/console/package-lock.json "$console_stamp"
fi
if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  echo "the console tests need Chromium: apt-get install chromium, or set CHROMIUM_BIN" >&2
  exit 1
fi
py_stamp=sdk-tests/py/.venv/installed-requirements.txt
if [ ! -x sdk-tests/py/.venv/bin/python ]; then
  python3 -m venv sdk-tests/py/.venv
fi
if ! cmp -s sdk-tests/py/requirements.txt "$py_stamp"; then
  sdk-tests/py/.venv/bin/pip install --quiet --disable-pip-version-check -r sdk-tests/py/requirements.txt
  cp sdk-tests/py/requirements.txt "$py_stamp"
fi

./scripts/lint-workflows.sh
cargo build --bins
cargo test --all-targets

export QSTASH_BIN="$PWD/target/debug/qstash"
(cd sdk-tests/js && node --test --test-concurrency=1 --test-timeout=120000 tests/)
(cd sdk-tests/py && .venv/bin/python -m pytest -q -p no:cacheprovider tests/)
(cd sdk-tests/console && node --test --test-concurrency=1 --test-timeout=120000 tests/)
# A representative part of the SDK suites again with persistence on (-data-dir, a fresh
# directory per server): keeping state on disk must change nothing the SDKs see.
(cd sdk-tests/js && QSTASH_TEST_DATA_DIR=1 node --test --test-concurrency=1 --test-timeout=120000 \
  tests/publish.test.mjs tests/queues.test.mjs tests/schedules.test.mjs tests/dlq.test.mjs \
  tests/flow-control.test.mjs tests/workflow-runs.test.mjs)
(cd sdk-tests/py && QSTASH_TEST_DATA_DIR=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/test_publish.py tests/test_queues.py tests/test_dlq.py tests/test_workflow_runs.py)
