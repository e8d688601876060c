#!/usr/bin/env bash
# Checks .github/workflows with actionlint (runner labels, expressions, action inputs and
# runtimes). Installs the pinned linter (.ci/requirements-lint.txt) into .ci/.venv on first
# use and again whenever the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.ci/.venv
stamp=$venv/installed-requirements-lint.txt
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s .ci/requirements-lint.txt "$stamp"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-lint.txt
  cp .ci/requirements-lint.txt "$stamp"
fi
"$venv/bin/actionlint" -no-color .github/workflows/*.yml
echo "actionlint: $(ls .github/workflows/*.yml | wc -l) workflows, no problems"
